"""Pure torch / numpy building blocks shared by the sequence tasks, models and metrics.

Nothing here depends on the harness: an autoregressive LSTM (`autoregressive`), the
random-LSTM oracle of the text task (`oracle`), exact quantities for the length-2 pairs
task (`pairs`) and BLEU / self-BLEU (`bleu`).
"""
