"""Council information: the OParl sync (``sync``, ``meetings``) over a careful HTTP client
(``client``), OParl objects mapped to document metadata (``mapping``), and procedures:
references in council texts (``references``, ``extract``), the model (``procedures``), the
timeline (``trace``), open tasks (``watch``) and the Beschlusslage for drafting (``decisions``)."""
from __future__ import annotations


def beschlusslage(refs, settings, **kw):
    """What the council decided on the cited papers, as cited sentences (see ``decisions.py``)."""
    from .decisions import beschlusslage as build

    return build(refs, settings, **kw)
