"""selm"""
