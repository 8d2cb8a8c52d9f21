"""The hooks a gbench plugin may implement. Each receives a ``register`` callback."""

import pluggy

hookspec = pluggy.HookspecMarker("gbench")

#: Decorator for plugin hook implementations: ``@hookimpl def register_tasks(register): ...``
hookimpl = pluggy.HookimplMarker("gbench")


@hookspec
def register_tasks(register):
    """Register Task subclasses by calling ``register(TaskClass)``."""


@hookspec
def register_models(register):
    """Register Model subclasses by calling ``register(ModelClass)``."""


@hookspec
def register_objectives(register):
    """Register Objective subclasses by calling ``register(ObjectiveClass)``."""


@hookspec
def register_metrics(register):
    """Register Metric subclasses by calling ``register(MetricClass)``."""


@hookspec
def register_claims(register):
    """Register Claim subclasses (a paper's claims, checked by ``gbench claims``)."""


@hookspec
def register_plots(register):
    """Add ``gbench plot`` kinds by calling ``register(name, draw, help, options=())``."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``gbench`` command group ``cli``."""
