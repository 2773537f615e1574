"""The ``boiler`` command: ``run`` an app, ``rebuild`` its views, ``token``, ``rules``, ``emulator`` helpers."""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import time
from typing import Any

import click

from .application import App
from .config import Config
from .context import Context
from .exceptions import BoilerError

log = logging.getLogger("boiler.cli")


def _finite(param: click.Parameter, value: float | None) -> float | None:
    # FloatRange lets NaN through (every comparison with NaN is false)
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a number of seconds", param=param)
    return value


def load_app(target: str) -> App:
    """Import ``module:attr`` (the working directory is importable, like ``flask run``)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise click.BadParameter(f"expected MODULE:ATTR, got {target!r}", param_hint="APP")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise click.BadParameter(f"cannot import {module_name!r}: {e}", param_hint="APP") from e
    try:
        app = getattr(module, attr)
    except AttributeError as e:
        raise click.BadParameter(
            f"{module_name!r} has no attribute {attr!r}", param_hint="APP"
        ) from e
    if not isinstance(app, App):
        raise click.BadParameter(
            f"{target} is a {type(app).__name__}, not a boiler.application.App", param_hint="APP"
        )
    return app


def _open(app: App) -> Any:
    config = app.config or Config.from_env()
    ctx = Context.read(config)
    where = (
        config.database_options().get("path")
        if config.backend == "embedded"
        else config.database_options().get("project")
    )
    click.echo(f"boiler: {app.name} on the {config.backend} backend ({where})", err=True)
    return ctx.db


@click.group()
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """boiler: keep view documents fresh from domain documents."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("target", metavar="APP")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--no-seed", is_flag=True, help="Never write the app's demo data.")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="BOILER_HOST")
@click.option(
    "--port", default=5000, show_default=True, type=click.IntRange(0, 65535), envvar="BOILER_PORT"
)
@click.option(
    "--message-queue",
    envvar="BOILER_MESSAGE_QUEUE",
    default=None,
    help="Socket.IO fan-out across server processes (redis://HOST:PORT/DB).",
)
@click.option(
    "--channel",
    envvar="BOILER_CHANNEL",
    default="boiler",
    show_default=True,
    help="Message-queue channel (one per deployment).",
)
@click.option(
    "--web-only", is_flag=True, help="Serve HTTP and Socket.IO only; another process runs APP."
)
@click.option(
    "--switch-interval",
    default=None,
    type=click.FloatRange(min=1e-6, max=1.0),
    callback=lambda ctx, param, value: _finite(param, value),
    envvar="BOILER_SWITCH_INTERVAL",
    help="Seconds a Python thread may hold the GIL while others wait (sys.setswitchinterval; "
    "default: Python's, 0.005). Shorter lets request handlers write faster while the runtime "
    "rebuilds, but slows large rebuilds (docs/runtime.md).",
)
def run(
    target: str,
    workers: int,
    no_seed: bool,
    host: str,
    port: int,
    message_queue: str | None,
    channel: str,
    web_only: bool,
    switch_interval: float | None,
) -> None:
    """Run APP (``module:attr``) and serve it over HTTP and Socket.IO until SIGTERM/SIGINT."""
    from .auth import verifier_from_config
    from .serve import Server, serve_until_signal

    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    app = load_app(target)
    runtime = None
    try:
        db = _open(app)
        verifier = verifier_from_config(Context.config, firebase_app=Context.firebase_app)
        if not web_only:
            if not no_seed and app.seed_if_empty(db):
                click.echo("boiler: empty database, demo data written", err=True)
            runtime = app.runtime(db, workers=workers).start()
        server = Server(
            app,
            db,
            verifier=verifier,
            runtime=runtime,
            host=host,
            port=port,
            message_queue=message_queue,
            channel=channel,
        )
        server.start()
    except (BoilerError, OSError) as e:
        if runtime is not None:
            runtime.stop(raise_errors=False)
        Context.close()
        raise click.ClickException(str(e)) from e
    role = "web only" if web_only else "runtime + web"
    queue = f", message queue {message_queue} ({channel})" if message_queue else ""
    click.echo(f"boiler: serving {server.url} ({role}{queue}); Ctrl-C to stop", err=True)
    try:
        serve_until_signal(server, runtime)
    finally:
        errors = [*(runtime.errors if runtime else []), *server.errors]
        Context.close()
    if errors:
        click.echo(f"boiler: stopped with {len(errors)} recorded error(s)", err=True)
        for error in errors[:20]:
            click.echo(f"  - {error}", err=True)
        sys.exit(1)
    click.echo("boiler: stopped", err=True)


@main.command()
@click.argument("target", metavar="APP")
@click.option(
    "--timeout", default=600.0, show_default=True, help="Give up after this many seconds."
)
def rebuild(target: str, timeout: float) -> None:
    """Rebuild every view of APP now: missing or stale views are written, orphans removed."""
    from .mediators.view import ViewMediator

    app = load_app(target)
    try:
        db = _open(app)
        runtime = app.runtime(db).start()
    except BoilerError as e:
        raise click.ClickException(str(e)) from e
    deadline = time.monotonic() + timeout
    try:
        view_mediators = [m for m in runtime.mediators if isinstance(m, ViewMediator)]
        while not runtime.sources_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        total = sum(len(m.live_paths()) for m in view_mediators)
        with click.progressbar(length=total, label="rebuilding views", file=sys.stderr) as bar:
            done = 0
            while time.monotonic() < deadline:
                built = sum(1 for m in view_mediators for h in m.handles() if h.builds)
                bar.update(max(0, min(total, built) - done))
                done = min(total, built)
                if done >= total and runtime.wait_idle(0.2):
                    break
                time.sleep(0.05)
        if not runtime.wait_idle(max(0.1, deadline - time.monotonic())):
            raise click.ClickException(f"rebuild did not settle within {timeout}s")
        stats = runtime.engine.writer.stats
    finally:
        runtime.stop(raise_errors=False)
        errors = runtime.errors
        Context.close()
    click.echo(
        f"boiler: {total} view(s) checked, {stats.get('writes', 0)} written, "
        f"{stats.get('deletes', 0)} deleted, {stats.get('skipped', 0)} unchanged",
        err=True,
    )
    if errors:
        for error in errors[:20]:
            click.echo(f"  - {error}", err=True)
        raise click.ClickException(f"{len(errors)} error(s) during rebuild")


@main.command()
@click.option("--app", "target", required=True, metavar="APP", help="The app (module:attr).")
@click.option("--ttl", type=click.FloatRange(min=1), default=None, help="Lifetime in seconds.")
@click.argument("uid")
def token(target: str, ttl: float | None, uid: str) -> None:
    """Print a signed development token for UID (needs BOILER_SECRET_KEY)."""
    from .auth import DevTokenVerifier, verifier_from_config

    app = load_app(target)
    try:
        verifier = verifier_from_config(app.config or Config.from_env())
    except BoilerError as e:
        raise click.ClickException(str(e)) from e
    if not isinstance(verifier, DevTokenVerifier):
        raise click.ClickException(
            "this app verifies Firebase ID tokens (Firestore is configured or BOILER_AUTH=firebase); "
            "sign in with Firebase Auth to get a token"
        )
    click.echo(verifier.issue(uid, ttl))


@main.command()
@click.argument("target", metavar="APP")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the rules to this file (e.g. firestore.rules) instead of stdout.",
)
def rules(target: str, output: str | None) -> None:
    """Print Firestore security rules for APP: owners read their views and create patches."""
    from .rules import generate

    app = load_app(target)
    try:
        text = generate(app, source=target)
    except BoilerError as e:
        raise click.ClickException(str(e)) from e
    if output is None:
        click.echo(text, nl=False)
        return
    with open(output, "w", encoding="utf-8") as fh:
        fh.write(text)
    click.echo(f"boiler: wrote Firestore rules for {app.name} to {output}", err=True)


@main.group()
def emulator() -> None:
    """Cloud Firestore emulator helpers."""


@emulator.command("start")
@click.option("--port", type=int, default=None, help="Port (default: a free one).")
def emulator_start(port: int | None) -> None:
    """Start the emulator in the foreground and print the environment to use it."""
    from .testing import FirestoreEmulator

    emu = FirestoreEmulator(port=port).start()
    click.echo(f"export FIRESTORE_EMULATOR_HOST={emu.host}")
    click.echo("export GOOGLE_CLOUD_PROJECT=demo-boiler")
    click.echo("# Ctrl-C stops the emulator", err=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
