"""The whole plugin contract of proctor.

Every built-in feature registers through these hooks exactly as a third-party plugin
does (see ``proctor/plugins/``). A plugin is a module or object with functions decorated
by :data:`hookimpl`, published under the ``proctor`` entry-point group::

    [project.entry-points.proctor]
    my_plugin = "my_package.proctor_plugin"

Rules for implementations:

* Accept only the arguments you use, by these exact names, and give them no defaults
  (pluggy 1.7 changed how defaulted hookimpl arguments are passed).
* Import heavy libraries inside the hook body, never at module level: ``proctor --help``
  loads every installed plugin module, and the pre-commit hooks load their built-ins.
* Every hook is called through pluggy, so ``tryfirst``, ``trylast`` and ``wrapper=True``
  work as pluggy documents them; an implementation that raises is recorded on its
  plugin and gives no answer (``docs/plugins.md``).
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT_NAME = "proctor"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def proctor_register_actions(register: Any) -> None:
    """Register action types: call ``register(ActionTypeSubclass)`` once per class.

    An action is the only way to change the store. ``api_name`` must be unique; a second
    registration of the same name is reported as a plugin error.
    """


@hookspec
def proctor_register_validators(register: Any) -> None:
    """Register code validators: ``register(validator_instance)``.

    A validator is a :class:`proctor.checks.validation.Validator` (``name``, ``rules``,
    ``applies_to(path)``, ``check(source, context)``). Validators run in ``proctor check``,
    in the pre-commit hooks, and on every ``main.py`` an action writes.
    """


@hookspec
def proctor_register_side_effects(register: Any) -> None:
    """Register side effects: ``register(side_effect)`` with ``name`` and
    ``run(result, context)``. They run after the commit of an action that names them in
    ``ActionType.side_effects``; a failing side effect is reported on the result and
    never undoes the commit. To observe every action, implement ``proctor_on_event``.
    """


@hookspec
def proctor_on_event(event: Any) -> Any:
    """Observe an outcome: ``event`` is a :class:`proctor.core.events.Event`.

    Called once for every action outcome (an :class:`~proctor.core.events.ActionEvent`
    of kind ``action.applied``, ``action.proposed``, ``action.denied`` or
    ``action.failed``), after the commit, if any, is published; runs add ``run.``
    events. Ignore kinds you do not know. A handler that raises is reported (on the
    action's result and in ``proctor plugins``) and never undoes anything.

    Return None, or, for a handler that delivers something (a webhook), a mapping of
    effect name to its state: ``"delivered"``, or ``"pending: <why>"`` for a delivery
    kept for later. For an action the mapping lands in ``result.side_effects``, and a
    pending one adds a warning to the result; it never changes the outcome.
    """


@hookspec
def proctor_before_commit(action: Any, params: Any, context: Any) -> Any:
    """Object to an action that policy allowed, before anything is written.

    ``action`` is the ActionType class, ``params`` its validated params model and
    ``context`` the ActionContext (actor, correlation id, config, ``snapshot`` of the
    tip the change will be built on). Called once per action that is about to commit,
    after ``proctor_policy`` allowed it, including the apply of an approved proposal.

    Return None to let it through, or a veto: a :class:`proctor.core.governance.Veto`
    or a non-empty reason string. Any veto denies the action (status ``denied``, exit
    code 1, the reason in ``errors``) and nothing is written. Like policy, this fails
    closed: an implementation that raises or answers something else denies too.
    """


@hookspec
def proctor_before_propose(action: Any, params: Any, context: Any) -> None:
    """Prepare for the commit that records an action policy sent to review.

    The arguments are those of ``proctor_before_commit``. Called once per action about
    to become a proposal, after the decision and before the proposal's own commit
    (``proposals/<id>.json``), so an observer can make durable what it owes for that
    commit before it exists (the side-effect outbox does). It is not a veto point: the
    return value is ignored. Like ``proctor_before_commit`` it fails closed: an
    implementation that raises denies the action, and nothing is written.
    """


@hookspec
def proctor_register_llm_backends(register: Any) -> None:
    """Register LLM backends: ``register(backend)`` with ``name`` and ``complete`` /
    ``acomplete``. Code generation picks a backend by name from configuration.
    """


@hookspec
def proctor_register_commands(cli: Any) -> None:
    """Add click commands or groups to the ``proctor`` CLI: ``cli.add_command(cmd)``."""


@hookspec
def proctor_policy(action: Any, params: Any, context: Any) -> Any:
    """Return a governance decision for an action about to run, or None to abstain.

    ``action`` is the ActionType class, ``params`` its validated params model and
    ``context`` the ActionContext (actor, correlation id, config). Return one of
    ``"ALLOW_IMMEDIATE"``, ``"REQUIRE_PROPOSAL"``, ``"DENY"`` (or a
    :class:`proctor.core.governance.Decision`); the most restrictive answer wins.
    """


@hookspec
def proctor_register_formats(register: Any) -> None:
    """Register output formats of ``proctor check``: ``register(fmt)`` once per format.

    A format is a :class:`proctor.checks.formats.OutputFormat` (``name``, ``render(findings,
    validators) -> str``, and ``summary`` when the human summary line belongs after it);
    ``proctor check --format NAME`` accepts every registered name. A second registration
    of a taken name is reported as a plugin error and the first one stays.
    """
