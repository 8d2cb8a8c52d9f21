"""Pure building blocks shared by plugins: quadrature, closed forms and sample estimators."""
