"""Write synthetic corpora in the real distributed layouts of RAVDESS, CREMA-D, IEMOCAP, EmoDB,
MSP-Podcast and MELD, so the scanners read them exactly as they read the real ones.

Each corpus has its own recording style (sample rate, microphone colouring, noise, reverberation,
acted vs natural expressiveness, label noise) and "language", so training on one and testing on
another is a real domain shift. Every utterance is rendered from a generator seeded by
(seed, corpus, utterance index), so the files do not depend on the order they are written in.

CREMA-D, IEMOCAP and MSP-Podcast also get their annotators' votes in the real layouts
(``processedResults/tabulatedVotes.csv``, the ``C-E`` evaluator lines of ``EmoEvaluation``,
``Labels/labels_detailed.csv``), drawn from generators of their own (so the audio does not change
with them): the raters mostly agree with the emotion shown, a share of them (about 10-45 %) names
another one, and now and then the vote ties.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selm_lib.data.synth.common import (
    Plan,
    corpus_rng,
    corpus_style,
    make_speakers,
    render_clip,
    spread,
    vad_ratings,
    write_csv,
    write_float_wav,
    write_wav,
)
from selm_lib.data.synth.voice import (
    emotion_table,
    make_style,
)


# ----------------------------------------------------------------------------------------- votes
def crowd_votes(
    rng: np.random.Generator,
    shown: str,
    others: Sequence[str],
    raters: int,
    agreement: tuple[float, float],
    tie: float = 0.0,
    weights: Sequence[float] | None = None,
) -> list[str]:
    """The emotions ``raters`` annotators name for a clip showing ``shown``: a share drawn from
    ``agreement`` of them name ``shown`` (always a strict plurality), the rest one of ``others``
    (``weights``: how likely each is); with probability ``tie`` the clip is ambiguous and
    ``shown`` ties with one of ``others``. Deterministic from ``rng``."""
    p = None if weights is None else np.asarray(weights, dtype=float) / float(np.sum(weights))
    if rng.random() < tie:
        rival = others[int(rng.choice(len(others), p=p))]
        top = raters // 2
        rest = [o for o in others if o != rival]
        votes = [shown] * top + [rival] * top
        votes += [rest[int(rng.integers(len(rest)))] for _ in range(raters - 2 * top)]
        return votes
    share = float(rng.uniform(*agreement))
    top = min(raters, max(raters // 2 + 1, math.ceil(share * raters - 1e-9)))
    votes = [shown] * top
    votes += [others[int(rng.choice(len(others), p=p))] for _ in range(raters - top)]
    return votes


# --------------------------------------------------------------------------------------- RAVDESS
RAVDESS_CODES = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgusted",
    "08": "surprised",
}


def write_ravdess(root: Path, plan: Plan) -> None:
    style = corpus_style("ravdess", plan.seed)
    # All 60 (emotion, intensity, statement, repetition) combinations of one actor, as in the real
    # corpus (neutral has no strong intensity); a smaller profile keeps a balanced subset.
    combos = [
        (e, i, s, r)
        for e in RAVDESS_CODES
        for i in (("01",) if e == "01" else ("01", "02"))
        for s in ("01", "02")
        for r in ("01", "02")
    ]
    by_emotion = {e: [c for c in combos if c[0] == e] for e in RAVDESS_CODES}
    chosen = [by_emotion[e][k] for k in range(8) for e in RAVDESS_CODES if k < len(by_emotion[e])][
        : plan.utterances_per_speaker
    ]
    actors = [f"{a:02d}" for a in range(1, plan.speakers + 1)]
    speakers = make_speakers(
        "ravdess", actors, ["M" if int(a) % 2 else "F" for a in actors], plan.seed
    )
    emotions = tuple(RAVDESS_CODES.values())
    for a, (actor, speaker) in enumerate(zip(actors, speakers, strict=True)):
        for u, (code, intensity, statement, repetition) in enumerate(chosen):
            rng = corpus_rng(plan.seed, "ravdess", a, u)
            samples, _ = render_clip(
                RAVDESS_CODES[code],
                speaker,
                style,
                plan,
                rng,
                intensity=1.0 if intensity == "02" else 0.6,
                emotions=emotions,
            )
            name = f"03-01-{code}-{intensity}-{statement}-{repetition}-{actor}.wav"
            write_wav(root / "Audio_Speech_Actors_01-24" / f"Actor_{actor}" / name, samples, 48000)
    if plan.bad_files:  # a zero-byte file with a valid name: quarantined as empty
        bad = root / "Audio_Speech_Actors_01-24" / "Actor_01" / "03-01-01-01-02-02-01.wav"
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_bytes(b"")


# --------------------------------------------------------------------------------------- CREMA-D
CREMA_EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgusted",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
# tabulatedVotes.csv: the header of the distributed file, its vote letters and intensity columns
CREMA_VOTE_LETTERS = {"A": "ANG", "D": "DIS", "F": "FEA", "H": "HAP", "N": "NEU", "S": "SAD"}
CREMA_INTENSITY = ("Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad")
CREMA_VOTES_HEADER = (
    "",
    *CREMA_VOTE_LETTERS,
    "fileName",
    "numResponses",
    "agreement",
    "emoVote",
    "meanEmoResp",
    *(f"mean{e}Resp" for e in CREMA_INTENSITY),
    "medianEmoResp",
    "meanEmoRespNorm",
    *(f"mean{e}RespNorm" for e in CREMA_INTENSITY),
    "medianEmoRespNorm",
)
# Rating modes (queryType): the id column is 100000 * mode + clip number. Voice-only raters agree
# least (as in the real table: about 0.64 mean agreement, against 0.70 face and 0.73 both).
CREMA_MODES = {1: (0.5, 0.9), 2: (0.55, 0.95), 3: (0.6, 1.0)}
CREMA_SENTENCES = (
    "IEO",
    "TIE",
    "IOM",
    "IWW",
    "TAI",
    "MTI",
    "IWL",
    "ITH",
    "DFA",
    "ITS",
    "TSI",
    "WSI",
)


def write_crema_d(root: Path, plan: Plan) -> None:
    style = corpus_style("crema_d", plan.seed)
    actors = [str(1001 + i) for i in range(plan.speakers)]
    rng_demo = corpus_rng(plan.seed, "crema_d:demographics")
    genders = [("M", "F")[int(rng_demo.integers(2))] for _ in actors]
    ages = [int(rng_demo.integers(20, 75)) for _ in actors]
    speakers = make_speakers("crema_d", actors, genders, plan.seed)
    combos = [(s, e) for s in CREMA_SENTENCES for e in CREMA_EMOTIONS]
    # Spread the sentences and emotions evenly over the subset an actor records.
    order = sorted(range(len(combos)), key=lambda k: (k % len(CREMA_EMOTIONS) + k // 6) % 12)
    chosen = [combos[k] for k in order][: plan.utterances_per_speaker]
    votes: dict[int, list[list[Any]]] = {mode: [] for mode in CREMA_MODES}
    emotions = tuple(CREMA_EMOTIONS.values())
    clip = 0
    for a, (actor, speaker) in enumerate(zip(actors, speakers, strict=True)):
        for u, (sentence, code) in enumerate(chosen):
            rng = corpus_rng(plan.seed, "crema_d", a, u)
            level = "XX"
            if sentence == "IEO":
                level = "XX" if code == "NEU" else ("LO", "MD", "HI")[u % 3]
            intensity = {"LO": 0.5, "MD": 0.75, "HI": 1.0}.get(level, 0.8)
            samples, expressed = render_clip(
                CREMA_EMOTIONS[code],
                speaker,
                style,
                plan,
                rng,
                intensity=intensity,
                emotions=emotions,
            )
            stem = f"{actor}_{sentence}_{code}_{level}"
            write_wav(root / "AudioWAV" / f"{stem}.wav", samples, 16000)
            clip += 1
            shown = {v: k for k, v in CREMA_EMOTIONS.items()}[expressed][0]
            for mode, agreement in CREMA_MODES.items():
                rng_votes = corpus_rng(plan.seed, "crema_d:votes", a, u, mode)
                votes[mode].append(
                    _crema_vote_row(100000 * mode + clip, stem, shown, agreement, rng_votes)
                )
    demographics = [
        {
            "ActorID": a,
            "Age": age,
            "Sex": {"M": "Male", "F": "Female"}[g],
            "Race": "Unknown",
            "Ethnicity": "Unknown",
        }
        for a, g, age in zip(actors, genders, ages, strict=True)
    ]
    if plan.bad_files:  # the real corpus's known empty file
        (root / "AudioWAV" / "1076_MTI_SAD_XX.wav").write_bytes(b"")
        demographics.append(
            {
                "ActorID": "1076",
                "Age": 25,
                "Sex": "Female",
                "Race": "Unknown",
                "Ethnicity": "Unknown",
            }
        )
    write_csv(root / "VideoDemographics.csv", demographics)
    rows = [row for mode in sorted(votes) for row in votes[mode]]
    write_r_csv(root / "processedResults" / "tabulatedVotes.csv", CREMA_VOTES_HEADER, rows)


def _crema_vote_row(
    row_id: int, stem: str, shown: str, agreement: tuple[float, float], rng: np.random.Generator
) -> list[Any]:
    """One row of tabulatedVotes.csv: 8-11 raters, mostly naming the shown emotion's letter
    (confusions lean to neutral, as in the real table), and their 0-100 intensity ratings."""
    letters = list(CREMA_VOTE_LETTERS)
    others = [x for x in letters if x != shown]
    raters = int(rng.integers(8, 12))
    named = crowd_votes(
        rng,
        shown,
        others,
        raters,
        agreement,
        tie=0.06,
        weights=[3.0 if x == "N" else 1.0 for x in others],
    )
    counts = {x: named.count(x) for x in letters}
    best = max(counts.values())
    intensity = {x: float(rng.uniform(30, 95)) if counts[x] else -1 for x in letters}
    scale = float(rng.uniform(0.9, 1.1))
    norm = {x: (min(100.0, v * scale) if v != -1 else -1) for x, v in intensity.items()}
    mean = sum(counts[x] * intensity[x] for x in letters if counts[x]) / raters
    mean_norm = sum(counts[x] * norm[x] for x in letters if counts[x]) / raters
    return [
        str(row_id),
        *(counts[x] for x in letters),
        stem,
        raters,
        best / raters,
        ":".join(x for x in letters if counts[x] == best),
        mean,
        *(intensity[x] for x in letters),
        float(round(mean)),
        mean_norm,
        *(norm[x] for x in letters),
        float(round(mean_norm)),
    ]


def write_r_csv(path: Path, header: Sequence[str], rows: list[list[Any]]) -> None:
    """A CSV as R's ``write.csv`` writes it (the CREMA-D tables): strings quoted, numbers bare
    (15 significant digits, whole numbers without a decimal point)."""

    def field(value: Any) -> str:
        if isinstance(value, str):
            return '"' + value.replace('"', '""') + '"'
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, float):
            return format(value, ".15g")
        return str(value)

    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(field(h) for h in header)]
    lines += [",".join(field(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------- IEMOCAP
IEMOCAP_MIX = (
    ("neu", 0.28),
    ("hap", 0.10),
    ("exc", 0.14),
    ("sad", 0.14),
    ("ang", 0.14),
    ("fru", 0.14),
    ("sur", 0.02),
    ("xxx", 0.04),
)
# The evaluators' category names of EmoEvaluation's C-E lines, by summary label.
IEMOCAP_CATEGORY = {
    "neu": "Neutral",
    "hap": "Happiness",
    "exc": "Excited",
    "sad": "Sadness",
    "ang": "Anger",
    "fru": "Frustration",
    "sur": "Surprise",
    "fea": "Fear",
    "dis": "Disgust",
    "oth": "Other",
}
IEMOCAP_EMOTION = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "sad": "sad",
    "ang": "angry",
    "fru": "frustrated",
    "sur": "surprised",
    "fea": "fearful",
    "dis": "disgusted",
    "oth": "other",
}


def write_iemocap(root: Path, plan: Plan) -> None:
    """Five sessions of one female and one male speaker; ``plan.speakers`` is fixed at 10."""
    style = corpus_style("iemocap", plan.seed)
    labels = [lab for lab, _ in IEMOCAP_MIX]
    weights = np.array([w for _, w in IEMOCAP_MIX])
    emotions = tuple(IEMOCAP_EMOTION[lab] for lab in labels if lab != "xxx")
    for n in range(1, 6):
        session = root / f"Session{n}"
        speakers = make_speakers("iemocap", [f"Ses0{n}F", f"Ses0{n}M"], ["F", "M"], plan.seed + n)
        dialogs = [f"Ses0{n}F_impro01", f"Ses0{n}M_impro02", f"Ses0{n}F_script01_1"]
        per_dialog = max(1, plan.utterances_per_speaker // len(dialogs))
        for d, dialog in enumerate(dialogs):
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            clock = 0.0
            for k in range(per_dialog * 2):
                gender = "FM"[k % 2]
                speaker = speakers[k % 2]
                utt = f"{dialog}_{gender}{k // 2:03d}"
                rng = corpus_rng(plan.seed, "iemocap", n, d, k)
                label = labels[int(rng.choice(len(labels), p=weights / weights.sum()))]
                # "xxx" = annotators disagreed: render an ambiguous mix (a random emotion).
                shown = IEMOCAP_EMOTION[label] if label != "xxx" else emotions[k % len(emotions)]
                samples, _ = render_clip(shown, speaker, style, plan, rng, emotions=emotions)
                write_wav(session / "sentences" / "wav" / dialog / f"{utt}.wav", samples, 16000)
                valence, arousal, dominance = vad_ratings(shown, (1.0, 5.0), rng)
                start, clock = clock, clock + len(samples) / 16000
                lines += [
                    f"[{start:.4f} - {clock:.4f}]\t{utt}\t{label}\t"
                    f"[{valence:.4f}, {arousal:.4f}, {dominance:.4f}]",
                    *_iemocap_evaluator_lines(
                        label, shown, gender, corpus_rng(plan.seed, "iemocap:votes", n, d, k)
                    ),
                    f"A-E1:\tval {int(valence)}; act {int(arousal)}; dom  {int(dominance)};\t()",
                    f"A-{gender}1:\tval {int(valence)}; act {int(arousal)}; dom  {int(dominance)};"
                    "\t()",
                    "",
                ]
                clock += 0.5
            evaluation = session / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
            evaluation.parent.mkdir(parents=True, exist_ok=True)
            evaluation.write_text("\n".join(lines) + "\n")
    if plan.bad_files:  # a truncated file: the header promises more samples than are there
        path = (
            root / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_F000.wav"
        )
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


def _iemocap_evaluator_lines(
    label: str, shown: str, gender: str, rng: np.random.Generator
) -> list[str]:
    """Three external evaluators' ``C-E<k>`` lines (and the actor's own ``C-F1`` / ``C-M1``) for a
    turn with summary ``label``: two or three of the evaluators name it (a strict majority, as the
    summary label is theirs), and in three turns of ten one of them also names a second category
    (which keeps the label the strict plurality of the shared votes); for ``xxx`` (no majority)
    the three name three different categories."""
    main = ["neu", "hap", "exc", "sad", "ang", "fru", "sur"]
    evaluators = sorted(int(e) for e in rng.choice(np.arange(1, 7), size=3, replace=False))
    own = {v: k for k, v in IEMOCAP_EMOTION.items()}[shown]
    if label == "xxx":
        rest = [c for c in main if c != own]
        picks = [int(i) for i in rng.choice(len(rest), size=2, replace=False)]
        named = [[own], [rest[picks[0]]], [rest[picks[1]]]]
    else:
        others = [c for c in main if c != label]
        named = [[c] for c in crowd_votes(rng, label, others, 3, (0.5, 0.9))]
        if rng.random() < 0.3:  # one evaluator who named the label also names a fresh category
            agreeing = [i for i, categories in enumerate(named) if categories == [label]]
            fresh = [c for c in main if all(c not in categories for categories in named)]
            named[agreeing[int(rng.integers(len(agreeing)))]].append(
                fresh[int(rng.integers(len(fresh)))]
            )
    order = [int(i) for i in rng.permutation(3)]
    lines = [
        f"C-E{e}:\t" + " ".join(f"{IEMOCAP_CATEGORY[c]};" for c in named[i]) + "\t()"
        for e, i in zip(evaluators, order, strict=True)
    ]
    lines.append(f"C-{gender}1:\t{IEMOCAP_CATEGORY[own]};\t()")  # the actor's self-rating
    return lines


# ----------------------------------------------------------------------------------------- EmoDB
EMODB_SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")
EMODB_CODES = {
    "W": "angry",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "E": "disgusted",
    "L": "bored",
    "N": "neutral",
}
EMODB_TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")


def write_emodb(root: Path, plan: Plan) -> None:
    style = corpus_style("emodb", plan.seed)
    ids = list(EMODB_SPEAKERS[: plan.speakers])
    genders = ["M" if s in {"03", "10", "11", "12", "15"} else "F" for s in ids]
    speakers = make_speakers("emodb", ids, genders, plan.seed)
    combos = [(t, e) for t in EMODB_TEXTS for e in EMODB_CODES]
    chosen = [combos[(k * 11) % len(combos)] for k in range(plan.utterances_per_speaker)]
    emotions = tuple(EMODB_CODES.values())
    for a, (sid, speaker) in enumerate(zip(ids, speakers, strict=True)):
        for u, (text, code) in enumerate(chosen):
            rng = corpus_rng(plan.seed, "emodb", a, u)
            samples, _ = render_clip(
                EMODB_CODES[code], speaker, style, plan, rng, emotions=emotions
            )
            write_wav(root / "wav" / f"{sid}{text}{code}{'ab'[u % 2]}.wav", samples, 16000)
    if plan.bad_files:  # a mislabelled file: emotion letter X does not exist in EmoDB
        samples, _ = render_clip(
            "neutral", speakers[0], style, plan, corpus_rng(plan.seed, "emodb:bad")
        )
        write_wav(root / "wav" / f"{ids[0]}a01Xa.wav", samples, 16000)


# ----------------------------------------------------------------------------------- MSP-Podcast
MSP_MIX = (
    ("N", 0.34),
    ("H", 0.16),
    ("A", 0.10),
    ("S", 0.10),
    ("U", 0.06),
    ("F", 0.04),
    ("D", 0.05),
    ("C", 0.07),
    ("O", 0.04),
    ("X", 0.04),
)
# labels_detailed.csv: an annotator's primary emotion by consensus code ("O": Other-<word>)
MSP_PRIMARY = {
    "N": "Neutral",
    "H": "Happy",
    "A": "Angry",
    "S": "Sad",
    "U": "Surprise",
    "F": "Fear",
    "D": "Disgust",
    "C": "Contempt",
    "O": "Other",
}
MSP_OTHER_WORDS = ("Curious", "Concerned", "Confused", "Bored")
MSP_EMOTION = {
    "N": "neutral",
    "H": "happy",
    "A": "angry",
    "S": "sad",
    "U": "surprised",
    "F": "fearful",
    "D": "disgusted",
    "C": "contempt",
    "O": "other",
}


def write_msp_podcast(root: Path, plan: Plan) -> None:
    """Natural podcast speech: weak expressiveness, many channels, skewed classes, 1-7 ratings."""
    labels = [lab for lab, _ in MSP_MIX]
    weights = np.array([w for _, w in MSP_MIX])
    emotions = tuple(MSP_EMOTION.values())
    rng_meta = corpus_rng(plan.seed, "msp_podcast:meta")
    genders = [("M", "F")[int(rng_meta.integers(2))] for _ in range(plan.speakers)]
    ids = [f"{100 + i}" for i in range(plan.speakers)]
    speakers = make_speakers("msp_podcast", ids, genders, plan.seed)
    # Each podcast has its own channel; speakers are split Train/Development/Test1 (60/20/20).
    split_names = spread(["Train", "Train", "Train", "Development", "Test1"], plan.speakers)
    rows = []
    detailed: list[dict[str, Any]] = []
    for a, (sid, speaker) in enumerate(zip(ids, speakers, strict=True)):
        style = make_style(
            f"msp_podcast_{a % 8}",
            language="en-us",
            seed=plan.seed,
            sample_rate=16000,
            expressiveness=0.85,
            noise_snr_db=float(22 + 4 * (a % 5)),
            reverb_rt60_s=0.1 * (a % 3),
        )
        for u in range(plan.utterances_per_speaker):
            rng = corpus_rng(plan.seed, "msp_podcast", a, u)
            label = labels[int(rng.choice(len(labels), p=weights / weights.sum()))]
            shown = MSP_EMOTION.get(label, emotions[u % len(emotions)])  # X: annotators split
            samples, _ = render_clip(shown, speaker, style, plan, rng, emotions=emotions)
            name = f"MSP-PODCAST_{a + 1:04d}_{u + 1:04d}"
            write_wav(root / "Audios" / f"{name}.wav", samples, 16000)
            valence, arousal, dominance = vad_ratings(shown, (1.0, 7.0), rng)
            rows.append(
                {
                    "FileName": f"{name}.wav",
                    "EmoClass": label,
                    "EmoAct": arousal,
                    "EmoVal": valence,
                    "EmoDom": dominance,
                    # a few segments have no identified speaker, as in the real corpus
                    "SpkrID": "Unknown" if (a == 0 and u % 10 == 9) else sid,
                    "Gender": {"M": "Male", "F": "Female"}[speaker.gender],
                    "Split_Set": split_names[a],
                }
            )
            rng_votes = corpus_rng(plan.seed, "msp_podcast:votes", a, u)
            detailed += _msp_detailed_rows(f"{name}.wav", label, shown, rng_votes)
    if plan.bad_files:
        audios = root / "Audios"
        (audios / "MSP-PODCAST_9001_0001.wav").write_text("this is not audio\n")  # non-audio
        nan = np.full(16000, np.nan, dtype=np.float32)
        write_float_wav(audios / "MSP-PODCAST_9001_0002.wav", nan, 16000)  # NaN-filled
        write_wav(
            audios / "MSP-PODCAST_9001_0003.wav", np.zeros(16000, np.float32), 16000
        )  # silent
        for k in (1, 2, 3):
            rows.append(
                {
                    "FileName": f"MSP-PODCAST_9001_000{k}.wav",
                    "EmoClass": "N",
                    "EmoAct": 4.0,
                    "EmoVal": 4.0,
                    "EmoDom": 4.0,
                    "SpkrID": "999",
                    "Gender": "Male",
                    "Split_Set": "Train",
                }
            )
    write_csv(root / "Labels" / "labels_consensus.csv", rows)
    write_csv(root / "Labels" / "labels_detailed.csv", detailed)


def _msp_detailed_rows(
    file_name: str, label: str, shown: str, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """The per-annotator rows of one segment in the release 1.11 layout (``FileName``,
    ``EmoDetail`` = ``"WORKER<n>; <primary>; <secondary>; A:<a>; V:<v>; D:<d>;"``): 5-7
    annotators, a plurality naming the consensus ``label``; for ``X`` (no agreement) the shown
    emotion ties with another."""
    codes = list(MSP_PRIMARY)
    own = label if label in MSP_PRIMARY else {v: k for k, v in MSP_EMOTION.items()}[shown]
    others = [c for c in codes if c != own]
    raters = int(rng.integers(5, 8))
    named = crowd_votes(rng, own, others, raters, (0.45, 0.9), tie=1.0 if label == "X" else 0.0)
    workers = sorted(int(w) for w in rng.choice(np.arange(1, 2000), size=raters, replace=False))
    rows = []
    for worker, code in zip(workers, [named[int(i)] for i in rng.permutation(raters)], strict=True):
        primary = MSP_PRIMARY[code]
        if code == "O":
            primary = f"Other-{MSP_OTHER_WORDS[int(rng.integers(len(MSP_OTHER_WORDS)))]}"
        secondary = ",".join(sorted({primary.split("-")[0], MSP_PRIMARY[others[worker % 8]]}))
        act, val, dom = (float(rng.integers(1, 8)) for _ in range(3))
        rows.append(
            {
                "FileName": file_name,
                "EmoDetail": f"WORKER{worker:05d}; {primary}; {secondary}; A:{act:.1f}; "
                f"V:{val:.1f}; D:{dom:.1f};",
            }
        )
    return rows


# ------------------------------------------------------------------------------------------ MELD
MELD_MIX = (
    ("neutral", 0.40),
    ("joy", 0.17),
    ("surprise", 0.11),
    ("anger", 0.11),
    ("sadness", 0.08),
    ("disgust", 0.05),
    ("fear", 0.08),
)
MELD_EMOTION = {
    "neutral": "neutral",
    "joy": "happy",
    "surprise": "surprised",
    "anger": "angry",
    "sadness": "sad",
    "disgust": "disgusted",
    "fear": "fearful",
}
MELD_CHARACTERS = (
    "Joey",
    "Rachel",
    "Ross",
    "Monica",
    "Chandler",
    "Phoebe",
    "Janice",
    "Gunther",
    "Carol",
    "Emily",
    "Mike",
    "Tag",
    "Julie",
    "Paolo",
    "Richard",
    "Susan",
    "Barry",
    "Kathy",
    "Mona",
    "Pete",
    "Tim",
    "Gary",
    "Eric",
    "Dana",
)
MELD_FOLDERS = (
    ("train_sent_emo.csv", "train_splits"),
    ("dev_sent_emo.csv", "dev_splits_complete"),
    ("test_sent_emo.csv", "output_repeated_splits_test"),
)


def write_meld(root: Path, plan: Plan) -> None:
    """TV dialogue: stereo clips (extracted at 16 kHz without mixing down), noisy, reverberant;
    official splits by dialogue, so characters appear in every split as in the real corpus."""
    style = corpus_style("meld", plan.seed)
    names = [
        MELD_CHARACTERS[i % len(MELD_CHARACTERS)] + ("" if i < 24 else str(i // 24))
        for i in range(plan.speakers)
    ]
    rng_meta = corpus_rng(plan.seed, "meld:meta")
    genders = [("M", "F")[int(rng_meta.integers(2))] for _ in names]
    speakers = make_speakers("meld", names, genders, plan.seed)
    labels = [lab for lab, _ in MELD_MIX]
    weights = np.array([w for _, w in MELD_MIX])
    emotions = tuple(MELD_EMOTION.values())
    total = plan.speakers * plan.utterances_per_speaker
    per_dialogue = 8
    tables: dict[str, list[dict[str, Any]]] = {csv_name: [] for csv_name, _ in MELD_FOLDERS}
    for k in range(total):
        dialogue = k // per_dialogue
        split = (0, 1, 2, 0, 0, 0, 0, 0, 2, 0)[dialogue % 10]  # 70/10/20 by dialogue
        csv_name, folder = MELD_FOLDERS[split]
        rng = corpus_rng(plan.seed, "meld", k)
        label = labels[int(rng.choice(len(labels), p=weights / weights.sum()))]
        s = int(rng.integers(plan.speakers))
        samples, _ = render_clip(
            MELD_EMOTION[label], speakers[s], style, plan, rng, emotions=emotions
        )
        stereo = np.stack([samples, 0.9 * samples], axis=1)  # stereo track, mixed down at load
        utterance = k % per_dialogue
        write_wav(root / folder / f"dia{dialogue}_utt{utterance}.wav", stereo, 16000)
        sentiment = {"neutral": "neutral", "joy": "positive", "surprise": "positive"}.get(
            label, "negative"
        )
        tables[csv_name].append(
            {
                "Sr No.": len(tables[csv_name]) + 1,
                "Utterance": f"(synthetic utterance {k})",
                "Speaker": names[s],
                "Emotion": label,
                "Sentiment": sentiment,
                "Dialogue_ID": dialogue,
                "Utterance_ID": utterance,
                "Season": 1,
                "Episode": 1,
                "StartTime": "00:00:00,000",
                "EndTime": "00:00:02,000",
            }
        )
    if plan.bad_files:  # a clip whose audio was never extracted from the mp4
        csv_name, folder = MELD_FOLDERS[0]
        (root / folder / "dia9999_utt0.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
        tables[csv_name].append(
            {
                "Sr No.": len(tables[csv_name]) + 1,
                "Utterance": "(not extracted)",
                "Speaker": names[0],
                "Emotion": "neutral",
                "Sentiment": "neutral",
                "Dialogue_ID": 9999,
                "Utterance_ID": 0,
                "Season": 1,
                "Episode": 1,
                "StartTime": "00:00:00,000",
                "EndTime": "00:00:02,000",
            }
        )
    for csv_name, rows in tables.items():
        write_csv(root / csv_name, rows)


# ------------------------------------------------------------------------------------- CMU-MOSEI
MOSEI_MIX = (
    ("neutral", 0.35),
    ("happy", 0.25),
    ("sad", 0.15),
    ("angry", 0.1),
    ("disgusted", 0.05),
    ("surprised", 0.05),
    ("fearful", 0.05),
)


def write_cmu_mosei(root: Path, plan: Plan) -> None:
    """YouTube monologues in the MMSA layout: one speaker per video, sentiment labels only
    (score -3..3 from the expressed valence, annotation Positive / Neutral / Negative)."""
    labels = [lab for lab, _ in MOSEI_MIX]
    weights = np.array([w for _, w in MOSEI_MIX])
    rng_meta = corpus_rng(plan.seed, "cmu_mosei:meta")
    videos = [f"v{zlib.crc32(f'{plan.seed}-{i}'.encode()):08x}"[:12] for i in range(plan.speakers)]
    genders = [("M", "F")[int(rng_meta.integers(2))] for _ in videos]
    speakers = make_speakers("cmu_mosei", videos, genders, plan.seed)
    modes = spread(["train"] * 7 + ["valid", "test", "test"], plan.speakers)
    rows = []
    for a, (video, speaker) in enumerate(zip(videos, speakers, strict=True)):
        # every video has its own microphone and room: webcam audio
        style = make_style(
            f"cmu_mosei_{a % 6}",
            language="en-us",
            seed=plan.seed,
            sample_rate=16000,
            expressiveness=0.8,
            noise_snr_db=float(15 + 3 * (a % 6)),
            reverb_rt60_s=0.05 * (a % 4),
        )
        for u in range(plan.utterances_per_speaker):
            rng = corpus_rng(plan.seed, "cmu_mosei", a, u)
            emotion = labels[int(rng.choice(len(labels), p=weights / weights.sum()))]
            samples, shown = render_clip(emotion, speaker, style, plan, rng, emotions=tuple(labels))
            write_wav(root / "Raw" / video / f"{u + 1}.wav", samples, 16000)
            valence = emotion_table()[shown]["valence"]
            score = float(np.clip(round((valence - 0.5) * 6 + rng.normal(0, 0.5), 1), -3, 3))
            annotation = "Positive" if score > 0.5 else ("Negative" if score < -0.5 else "Neutral")
            rows.append(
                {
                    "video_id": video,
                    "clip_id": u + 1,
                    "text": f"(synthetic clip {u + 1})",
                    "label": score,
                    "label_T": score,
                    "label_A": score,
                    "label_V": score,
                    "annotation": annotation,
                    "mode": modes[a],
                }
            )
    if plan.bad_files:  # a clip whose audio was never extracted from the mp4
        (root / "Raw" / videos[0] / "999.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
        rows.append(
            {
                "video_id": videos[0],
                "clip_id": 999,
                "text": "(not extracted)",
                "label": 0.0,
                "label_T": 0.0,
                "label_A": 0.0,
                "label_V": 0.0,
                "annotation": "Neutral",
                "mode": modes[0],
            }
        )
    write_csv(root / "label.csv", rows)


# Corpus name -> (folder under the synthetic root, writer). The folder names are the defaults of
# params.yaml curate.corpora.*.root.
SELM_WRITERS: dict[str, tuple[str, Callable[[Path, Plan], None]]] = {
    "ravdess": ("RAVDESS", write_ravdess),
    "crema_d": ("CREMA-D", write_crema_d),
    "iemocap": ("IEMOCAP_full_release", write_iemocap),
    "emodb": ("EmoDB", write_emodb),
    "msp_podcast": ("MSP-Podcast", write_msp_podcast),
    "meld": ("MELD", write_meld),
    "cmu_mosei": ("CMU-MOSEI", write_cmu_mosei),
}
