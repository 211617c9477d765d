"""Synthetic corpora in the distributed layouts of the SER-Evals corpora: EMOVO, CaFE, ShEMO,
SUBESCO, MESD, AESDD, URDU, CASIA and Thorsten emotional, read by ``selm_lib.data.corpora``.

Every corpus has its own synthetic "language" (vowel inventory, syllable timing), its own speakers
(genders as the naming encodes them) and its own channel (sample rate, microphone EQ, noise,
reverberation, band limits), so training on one and testing on another is a real domain shift.
Labels are spread evenly over each speaker's utterances (rotated between speakers so a small plan
still holds every label). Every clip is rendered from
``corpus_rng(plan.seed, corpus, speaker, index)``, so the files do not depend on the order they
are written in. With ``plan.bad_files`` each corpus gets exactly one deliberately broken file
(bad name, wrong folder or empty) that its scanner quarantines.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from selm_lib.data.synth.common import (
    Plan,
    corpus_rng,
    corpus_style,
    make_speakers,
    render_clip,
    write_wav,
)
from selm_lib.data.synth.voice import CorpusStyle, Speaker


def _slots(speaker_index: int, count: int, n_labels: int) -> Iterator[tuple[int, int, int]]:
    """``(u, label index, repeat)`` for a speaker's ``count`` utterances: labels cycle, rotated by
    speaker so that every label appears about equally even when ``count < n_labels``; ``repeat``
    numbers this speaker's uses of the label (unique per (label, repeat))."""
    for u in range(count):
        yield u, (speaker_index * count + u) % n_labels, u // n_labels


def _interleave(first: list[str], second: list[str]) -> list[str]:
    out = []
    for i in range(max(len(first), len(second))):
        out += [x[i] for x in (first, second) if i < len(x)]
    return out


def _clip(
    corpus: str,
    emotion: str,
    speaker: Speaker,
    style: CorpusStyle,
    plan: Plan,
    emotions: tuple[str, ...],
    *index: int,
    intensity: float = 1.0,
) -> np.ndarray:
    rng = corpus_rng(plan.seed, corpus, *index)
    return render_clip(emotion, speaker, style, plan, rng, intensity=intensity, emotions=emotions)[
        0
    ]


# ----------------------------------------------------------------------------------------- EMOVO
EMOVO_CODES = {
    "dis": "disgusted",
    "gio": "happy",
    "neu": "neutral",
    "pau": "fearful",
    "rab": "angry",
    "sor": "surprised",
    "tri": "sad",
}
EMOVO_SENTENCES = (
    "b1",
    "b2",
    "b3",
    "d1",
    "d2",
    "l1",
    "l2",
    "l3",
    "l4",
    "n1",
    "n2",
    "n3",
    "n4",
    "n5",
)


def write_emovo(root: Path, plan: Plan) -> None:
    style = corpus_style("emovo", plan.seed)
    ids = ["f1", "m1", "f2", "m2", "f3", "m3"][: plan.speakers]
    speakers = make_speakers("emovo", ids, [s[0].upper() for s in ids], plan.seed)
    codes = list(EMOVO_CODES)
    emotions = tuple(EMOVO_CODES.values())
    count = min(plan.utterances_per_speaker, len(codes) * len(EMOVO_SENTENCES))
    sr = style.sample_rate
    for a, (sid, speaker) in enumerate(zip(ids, speakers, strict=True)):
        for u, e, rep in _slots(a, count, len(codes)):
            sentence = EMOVO_SENTENCES[rep % len(EMOVO_SENTENCES)]
            samples = _clip("emovo", EMOVO_CODES[codes[e]], speaker, style, plan, emotions, a, u)
            write_wav(root / sid / f"{codes[e]}-{sid}-{sentence}.wav", samples, sr)
    if plan.bad_files:  # a renamed take: not <emo>-<speaker>-<sentence>.wav
        samples = _clip("emovo:bad", "neutral", speakers[0], style, plan, ())
        write_wav(root / ids[0] / f"neu-{ids[0]}-b1 (copy).wav", samples, sr)


# ------------------------------------------------------------------------------------------ CaFE
CAFE_CODES = {
    "C": ("Colère", "angry"),
    "D": ("Dégoût", "disgusted"),
    "J": ("Joie", "happy"),
    "N": ("Neutre", "neutral"),
    "P": ("Peur", "fearful"),
    "S": ("Surprise", "surprised"),
    "T": ("Tristesse", "sad"),
}
CAFE_SENTENCES = 6


def write_cafe(root: Path, plan: Plan) -> None:
    style = corpus_style("cafe", plan.seed)
    ids = [f"{i:02d}" for i in range(1, min(plan.speakers, 12) + 1)]
    speakers = make_speakers("cafe", ids, ["M" if int(s) % 2 else "F" for s in ids], plan.seed)
    codes = list(CAFE_CODES)
    emotions = tuple(e for _, e in CAFE_CODES.values())
    count = min(plan.utterances_per_speaker, len(codes) * CAFE_SENTENCES)  # neutral: 6 sentences
    sr = style.sample_rate
    for a, (sid, speaker) in enumerate(zip(ids, speakers, strict=True)):
        for u, e, rep in _slots(a, count, len(codes)):
            code = codes[e]
            folder, emotion = CAFE_CODES[code]
            if code == "N":  # neutral: one intensity, no intensity folder
                intensity, sentence, where = "1", rep % CAFE_SENTENCES + 1, root / folder
            else:
                intensity = "12"[rep % 2]
                sentence = (rep // 2) % CAFE_SENTENCES + 1
                where = root / folder / {"1": "Faible", "2": "Fort"}[intensity]
            samples = _clip(
                "cafe",
                emotion,
                speaker,
                style,
                plan,
                emotions,
                a,
                u,
                intensity=1.0 if intensity == "2" else 0.65,
            )
            write_wav(where / f"{sid}-{code}-{intensity}-{sentence}.wav", samples, sr)
    if plan.bad_files:  # the sentence number is missing from the name
        samples = _clip("cafe:bad", "happy", speakers[0], style, plan, ())
        write_wav(root / "Joie" / "Fort" / f"{ids[0]}-J-2.wav", samples, sr)


# ----------------------------------------------------------------------------------------- ShEMO
SHEMO_CODES = {
    "A": "angry",
    "H": "happy",
    "N": "neutral",
    "S": "sad",
    "W": "surprised",
    "F": "fearful",
}


def write_shemo(root: Path, plan: Plan) -> None:
    """Radio-play speech of 87 speakers (31 female, 56 male), numbered per gender."""
    style = corpus_style("shemo", plan.seed)
    ids = _interleave([f"F{i:02d}" for i in range(1, 32)], [f"M{i:02d}" for i in range(1, 57)])
    ids = ids[: plan.speakers]
    speakers = make_speakers("shemo", ids, [s[0] for s in ids], plan.seed)
    codes = list(SHEMO_CODES)
    emotions = tuple(SHEMO_CODES.values())
    count = min(plan.utterances_per_speaker, 98)
    sr = style.sample_rate
    for a, (sid, speaker) in enumerate(zip(ids, speakers, strict=True)):
        folder = {"F": "female", "M": "male"}[sid[0]]
        for u, e, _ in _slots(a, count, len(codes)):
            samples = _clip("shemo", SHEMO_CODES[codes[e]], speaker, style, plan, emotions, a, u)
            write_wav(root / folder / f"{sid}{codes[e]}{u + 1:02d}.wav", samples, sr)
    if plan.bad_files:  # a zero-byte file with a valid name: quarantined as empty
        bad = root / {"F": "female", "M": "male"}[ids[0][0]] / f"{ids[0]}N99.wav"
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_bytes(b"")


# --------------------------------------------------------------------------------------- SUBESCO
SUBESCO_EMOTIONS = {
    "NEUTRAL": "neutral",
    "ANGRY": "angry",
    "HAPPY": "happy",
    "DISGUST": "disgusted",
    "FEAR": "fearful",
    "SAD": "sad",
    "SURPRISE": "surprised",
}
SUBESCO_FEMALE = (
    "ANIKA",
    "MONIKA",
    "NUSRAT",
    "PRIYA",
    "RUMANA",
    "SADIA",
    "TANIA",
    "URMI",
    "JOYA",
    "LIPI",
)
SUBESCO_MALE = (
    "ARIF",
    "BIPLOB",
    "HASAN",
    "JAMIL",
    "KAMAL",
    "MAHIM",
    "RAHIM",
    "SAKIB",
    "TANVIR",
    "ZAHID",
)


def write_subesco(root: Path, plan: Plan) -> None:
    """20 actors (10 female, 10 male), 10 sentences, 5 takes of each, files in one folder."""
    style = corpus_style("subesco", plan.seed)
    female = [f"F_{i + 1:02d}_{n}" for i, n in enumerate(SUBESCO_FEMALE)]
    male = [f"M_{i + 1:02d}_{n}" for i, n in enumerate(SUBESCO_MALE)]
    ids = _interleave(female, male)[: plan.speakers]
    speakers = make_speakers("subesco", ids, [s[0] for s in ids], plan.seed)
    codes = list(SUBESCO_EMOTIONS)
    emotions = tuple(SUBESCO_EMOTIONS.values())
    count = min(plan.utterances_per_speaker, len(codes) * 50)
    sr = style.sample_rate
    folder = root / "SUBESCO"
    for a, (sid, speaker) in enumerate(zip(ids, speakers, strict=True)):
        for u, e, rep in _slots(a, count, len(codes)):
            sentence, take = rep % 10 + 1, rep // 10 + 1
            samples = _clip(
                "subesco", SUBESCO_EMOTIONS[codes[e]], speaker, style, plan, emotions, a, u
            )
            write_wav(folder / f"{sid}_S_{sentence}_{codes[e]}_{take}.wav", samples, sr)
    if plan.bad_files:  # the take number is missing
        samples = _clip("subesco:bad", "angry", speakers[0], style, plan, ())
        write_wav(folder / f"{ids[0]}_S_1_ANGRY.wav", samples, sr)


# ------------------------------------------------------------------------------------------ MESD
MESD_EMOTIONS = {
    "Anger": "angry",
    "Disgust": "disgusted",
    "Fear": "fearful",
    "Happiness": "happy",
    "Neutral": "neutral",
    "Sadness": "sad",
}
MESD_WORDS = (
    "abajo",
    "abrazo",
    "agua",
    "amigo",
    "árbol",
    "arriba",
    "azul",
    "bailar",
    "barco",
    "calle",
    "camino",
    "canción",
    "casa",
    "cielo",
    "comida",
    "corazón",
    "dinero",
    "escuela",
    "familia",
    "fuego",
    "jardín",
    "luna",
    "mañana",
    "noche",
)


def _child(speaker: Speaker, rng: np.random.Generator) -> Speaker:
    """A child's voice: high F0, short vocal tract, faster speech."""
    return dataclasses.replace(
        speaker,
        f0_hz=round(float(rng.uniform(250.0, 310.0)), 2),
        formant_scale=round(float(rng.uniform(1.28, 1.38)), 4),
        rate_scale=round(speaker.rate_scale * 1.05, 3),
    )


def write_mesd(root: Path, plan: Plan) -> None:
    """Single words by female adults (F), male adults (M) and children (C); no surprise. The names
    carry the voice group only, so each group's words are numbered across its speakers."""
    style = corpus_style("mesd", plan.seed)
    voices = ["F", "M", "C"] * plan.speakers
    ids = [f"{voices[i]}{i // 3 + 1}" for i in range(plan.speakers)]
    speakers = make_speakers("mesd", ids, ["M" if v[0] == "M" else "F" for v in ids], plan.seed)
    speakers = [
        _child(s, corpus_rng(plan.seed, "mesd:child", i)) if ids[i][0] == "C" else s
        for i, s in enumerate(speakers)
    ]
    codes = list(MESD_EMOTIONS)
    emotions = tuple(MESD_EMOTIONS.values())
    count = plan.utterances_per_speaker
    sr = style.sample_rate
    for a, (sid, speaker) in enumerate(zip(ids, speakers, strict=True)):
        voice, rank = sid[0], a // 3  # rank of this speaker within its voice group
        for u in range(count):
            k = rank * count + u  # numbered across the voice group: (e, j) unique in the group
            e, j = (k + a % 3) % len(codes), k // len(codes)
            corpus = "AB"[j % 2]
            w = j // 2
            word = MESD_WORDS[w % len(MESD_WORDS)] + (
                str(w // len(MESD_WORDS)) if w >= len(MESD_WORDS) else ""
            )
            samples = _clip("mesd", MESD_EMOTIONS[codes[e]], speaker, style, plan, emotions, a, u)
            write_wav(root / f"{codes[e]}_{voice}_{corpus}_{word}.wav", samples, sr)
    if plan.bad_files:  # MESD has no surprise: this name is not in its naming scheme
        samples = _clip("mesd:bad", "surprised", speakers[0], style, plan, ())
        write_wav(root / "Surprise_F_A_abajo.wav", samples, sr)


# ----------------------------------------------------------------------------------------- AESDD
AESDD_CODES = {
    "a": ("anger", "angry"),
    "d": ("disgust", "disgusted"),
    "f": ("fear", "fearful"),
    "h": ("happiness", "happy"),
    "s": ("sadness", "sad"),
}
AESDD_SENTENCES = 20


def write_aesdd(root: Path, plan: Plan) -> None:
    """Five actors (genders not in the names), 20 sentences, five emotions (no neutral)."""
    style = corpus_style("aesdd", plan.seed)
    ids = [str(i) for i in range(1, min(plan.speakers, 5) + 1)]
    speakers = make_speakers("aesdd", ids, ["F" if int(s) % 2 else "M" for s in ids], plan.seed)
    codes = list(AESDD_CODES)
    emotions = tuple(e for _, e in AESDD_CODES.values())
    count = min(plan.utterances_per_speaker, len(codes) * AESDD_SENTENCES * 2)
    sr = style.sample_rate
    for a, (sid, speaker) in enumerate(zip(ids, speakers, strict=True)):
        for u, e, rep in _slots(a, count, len(codes)):
            folder, emotion = AESDD_CODES[codes[e]]
            sentence = rep % AESDD_SENTENCES + 1
            take = "" if rep < AESDD_SENTENCES else "b"  # a second take, as in "a05 (3)b.wav"
            samples = _clip("aesdd", emotion, speaker, style, plan, emotions, a, u)
            write_wav(root / folder / f"{codes[e]}{sentence:02d} ({sid}){take}.wav", samples, sr)
    if plan.bad_files:  # a happiness file filed under anger/
        samples = _clip("aesdd:bad", "happy", speakers[0], style, plan, ())
        write_wav(root / "anger" / f"h99 ({ids[0]}).wav", samples, sr)


# ------------------------------------------------------------------------------------------ URDU
URDU_CODES = {
    "A": ("Angry", "angry"),
    "H": ("Happy", "happy"),
    "N": ("Neutral", "neutral"),
    "S": ("Sad", "sad"),
}


def write_urdu(root: Path, plan: Plan) -> None:
    """Talk-show speech of 38 speakers (27 male, 11 female), numbered per gender; TV channel."""
    style = corpus_style("urdu", plan.seed)
    ids = _interleave([f"SM{i}" for i in range(1, 28)], [f"SF{i}" for i in range(1, 12)])
    ids = ids[: plan.speakers]
    speakers = make_speakers("urdu", ids, [s[1] for s in ids], plan.seed)
    codes = list(URDU_CODES)
    emotions = tuple(e for _, e in URDU_CODES.values())
    count = plan.utterances_per_speaker
    sr = style.sample_rate
    for a, (sid, speaker) in enumerate(zip(ids, speakers, strict=True)):
        for u, e, _ in _slots(a, count, len(codes)):
            folder, emotion = URDU_CODES[codes[e]]
            samples = _clip("urdu", emotion, speaker, style, plan, emotions, a, u)
            name = f"{sid}_F{u + 1}_{codes[e]}{a * count + u + 1:03d}.wav"
            write_wav(root / folder / name, samples, sr)
    if plan.bad_files:  # an angry clip filed under Sad/
        samples = _clip("urdu:bad", "angry", speakers[0], style, plan, ())
        write_wav(root / "Sad" / f"{ids[0]}_F999_A999.wav", samples, sr)


# ----------------------------------------------------------------------------------------- CASIA
CASIA_SPEAKERS = (("liuchanhg", "F"), ("wangzhe", "M"), ("zhaoquanyin", "F"), ("ZhaoZuoxiang", "M"))
CASIA_EMOTIONS = {
    "angry": "angry",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprised",
}


def write_casia(root: Path, plan: Plan) -> None:
    """Four actors; texts 201-250 of the public subset in every emotion."""
    style = corpus_style("casia", plan.seed)
    chosen = CASIA_SPEAKERS[: plan.speakers]
    ids = [s for s, _ in chosen]
    speakers = make_speakers("casia", ids, [g for _, g in chosen], plan.seed)
    codes = list(CASIA_EMOTIONS)
    emotions = tuple(CASIA_EMOTIONS.values())
    count = min(plan.utterances_per_speaker, len(codes) * 50)
    sr = style.sample_rate
    for a, (sid, speaker) in enumerate(zip(ids, speakers, strict=True)):
        for u, e, rep in _slots(a, count, len(codes)):
            samples = _clip("casia", CASIA_EMOTIONS[codes[e]], speaker, style, plan, emotions, a, u)
            write_wav(root / sid / codes[e] / f"{201 + rep % 50}.wav", samples, sr)
    if plan.bad_files:  # not a numeric file name
        samples = _clip("casia:bad", "angry", speakers[0], style, plan, ())
        write_wav(root / ids[0] / "angry" / "201_copy.wav", samples, sr)


# ---------------------------------------------------------------------------- Thorsten emotional
THORSTEN_STYLES = (
    "amused",
    "angry",
    "disgusted",
    "drunk",
    "neutral",
    "sleepy",
    "surprised",
    "whisper",
)
THORSTEN_RENDER = {
    "amused": "happy",
    "angry": "angry",
    "disgusted": "disgusted",
    "drunk": "other",
    "neutral": "neutral",
    "sleepy": "bored",
    "surprised": "surprised",
    "whisper": "neutral",
}


def write_thorsten_emotional(root: Path, plan: Plan) -> None:
    """One male speaker; the same sentences in eight styles. Only one speaker exists, so he reads
    ``plan.speakers * plan.utterances_per_speaker`` clips (a corpus as large as the others)."""
    style = corpus_style("thorsten_emotional", plan.seed)
    (thorsten,) = make_speakers("thorsten_emotional", ["thorsten"], ["M"], plan.seed)
    voices = {
        "drunk": dataclasses.replace(thorsten, rate_scale=round(thorsten.rate_scale * 0.8, 3)),
        "whisper": dataclasses.replace(thorsten, breathiness=0.9, loudness_db=-6.0),
    }
    emotions = tuple(sorted(set(THORSTEN_RENDER.values())))
    folder = root / "thorsten-emotional_v02"
    total = max(1, plan.speakers) * plan.utterances_per_speaker
    sr = style.sample_rate
    for u, e, rep in _slots(0, total, len(THORSTEN_STYLES)):
        name = THORSTEN_STYLES[e]
        sentence = f"{zlib.crc32(f'thorsten-{plan.seed}-{rep}'.encode()):08x}"
        samples = _clip(
            "thorsten_emotional",
            THORSTEN_RENDER[name],
            voices.get(name, thorsten),
            style,
            plan,
            emotions,
            0,
            u,
        )
        write_wav(folder / name / f"{sentence}.wav", samples, sr)
    if plan.bad_files:  # "sad" is not one of the corpus's styles
        samples = _clip("thorsten_emotional:bad", "sad", thorsten, style, plan, ())
        write_wav(folder / "sad" / "0badf11e.wav", samples, sr)


# Corpus name -> (folder under the synthetic root, writer).
SEREVALS_WRITERS: dict[str, tuple[str, Callable[[Path, Plan], None]]] = {
    "emovo": ("EMOVO", write_emovo),
    "cafe": ("CaFE", write_cafe),
    "shemo": ("ShEMO", write_shemo),
    "subesco": ("SUBESCO", write_subesco),
    "mesd": ("MESD", write_mesd),
    "aesdd": ("AESDD", write_aesdd),
    "urdu": ("URDU", write_urdu),
    "casia": ("CASIA", write_casia),
    "thorsten_emotional": ("Thorsten-emotional", write_thorsten_emotional),
}
