"""Informer transforms that make cached objects share the parts they hold equal.

An informer keeps every object of its kind for as long as it runs, and the replicas of one
Instance all carry its template: 5 of a Replica's 9 KB in memory. Kubernetes trims its
caches the same way, with client-go's informer transforms (dropping managedFields). Here
replicas whose templates are equal point to one template object.

Sharing changes nothing for readers who follow the informer's rule that cached objects are
read-only; `get` hands out deep copies, which share nothing.
"""

from __future__ import annotations

import weakref

from constellation.apis.instance import ReplicaTemplate
from constellation.apis.replica import Replica


class TemplateSharing:
    """A Replica transform: replicas with equal templates share one. For one informer (it is
    called from that informer's thread only)."""

    def __init__(self) -> None:
        # Weak: a template goes when the last cached replica holding it does.
        self._templates: weakref.WeakValueDictionary[str, ReplicaTemplate] = (
            weakref.WeakValueDictionary()
        )

    def __call__(self, replica: Replica) -> Replica:
        template_hash = replica.spec.templateHash
        if not template_hash:
            return replica
        known = self._templates.get(template_hash)
        # Compared, not trusted: anyone may write a replica, and a hash says nothing then.
        if known is not None and known == replica.spec.template:
            replica.spec.template = known
        else:
            self._templates[template_hash] = replica.spec.template
        return replica
