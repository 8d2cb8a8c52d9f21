"""Pure torch / numpy building blocks shared by the built-in plugins; no harness imports.

Continuous tasks: 2-D quadrature and closed forms (`quadrature`), the Figure 1 optima
(`reference`), sample estimators with standard errors (`estimators`). Sequence tasks: an
autoregressive LSTM (`autoregressive`), the random-LSTM oracle of the text task (`oracle`),
exact quantities for the length-2 pairs task (`pairs`) and BLEU / self-BLEU (`bleu`).
"""
