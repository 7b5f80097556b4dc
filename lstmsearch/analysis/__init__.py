"""Answers: hand-built constructions and (later) length generalisation, explanations, plots."""
