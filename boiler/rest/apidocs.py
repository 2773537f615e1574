"""Swagger UI pages without third-party hosts.

flasgger's UI page pulls web fonts from a CDN and links out in its footer.
:func:`local_templates` is a blueprint whose templates take precedence over
flasgger's (register it first): every asset then comes from this server.
"""

from __future__ import annotations

from flask import Blueprint
from jinja2 import BaseLoader, DictLoader

_HEAD = """<meta charset="UTF-8">
<title>{{ title }}</title>
<link rel="stylesheet" type="text/css" href="{{ swagger_ui_css }}">
<link rel="icon" type="image/png" href="{{ favicon }}" sizes="64x64 32x32 16x16" />
<style>
  html { box-sizing: border-box; overflow-y: scroll; }
  *, *:before, *:after { box-sizing: inherit; }
  body { margin: 0; background: #fafafa; font-family: system-ui, sans-serif; }
</style>
"""

_FOOTER = """<div class="swagger-ui"><div class="wrapper"><section class="clear">
{{ flasgger_config.footer_text | safe }}
</section></div></div>
"""


class _TemplatesBlueprint(Blueprint):
    @property  # type: ignore[override]
    def jinja_loader(self) -> BaseLoader | None:
        return DictLoader({"flasgger/head.html": _HEAD, "flasgger/footer.html": _FOOTER})


def local_templates() -> Blueprint:
    """A route-less blueprint overriding flasgger's head and footer templates."""
    return _TemplatesBlueprint("boiler_apidocs_templates", __name__)


__all__ = ["local_templates"]
