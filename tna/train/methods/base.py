"""What a training method declares (`Method`), what its loss sees (`Outputs`), the registry that
`register_method` fills (in the style of the backend registry, tna.deploy.backends) and how
methods compose (`parse_method`).

A method is a sum of named loss terms. `method: tna+self-distill` trains with the union of both
methods' terms, in the order written: a term two methods name alike (`ce_base`, the CE of the
base's logits) is one term, counted once. Methods that train an extra network (a twin or a
teacher) do not combine with each other, and `single` (the plain CE every other method already
holds) combines with nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from tna.errors import TnaError

NETS = ("none", "twin", "teacher")   # the extra network a method trains beside the base
SEP = "+"                            # tna+self-distill: the sum of both methods' loss terms


@dataclass
class Outputs:
    """What one batch gives the loss terms (torch tensors; float64 in the unit tests)."""
    logits: Any                      # (N, classes): the base's readout summed over T
    labels: Any                      # (N,) class indices
    steps: Any = None                # (N, classes, T): the base's readout per step (methods
                                     # with per_step=True); steps.sum(-1) is the logits
    twin: Any = None                 # (N, classes): the twin's logits (nets='twin')
    teacher: Any = None              # (N, classes): the frozen teacher's logits (nets='teacher')


# terms(outputs, cfg) -> {name: (weight, scalar tensor)}; the loss is the sum of weight * term
Terms = Callable[[Outputs, Any], dict]


@dataclass(frozen=True)
class Method:
    """One training method, declared in its own module of tna.train.methods."""
    name: str                        # --method NAME; set by register_method
    terms: Terms                     # its loss terms; cfg is the TrainConfig
    nets: str = "none"               # none | twin (trained with the base) | teacher (frozen)
    per_step: bool = False           # its terms read Outputs.steps (the readout per step)
    options: type | None = None      # frozen dataclass of its own TrainConfig fields (flags),
                                     # with an optional `validate(cfg)`; None: no options
    check: Callable | None = None    # check(cfg) -> None or raises TnaError; beyond options
    combines: bool = True            # may be written with other methods (a+b)
    source: str = ""                 # paper, for the README's method table and --help
    order: int = 100                 # place in --help, tables, plots and a+b names (low first)
    # how the bench names and groups it
    label: str = ""                  # in tables and plot legends; default: the name
    marker: str = "o"                # matplotlib marker in memory.png
    uses_alpha: bool = False         # its loss weights a term by --alpha: the bench sweeps alphas
    role: str | None = None          # 'baseline' (the single network), 'main' (TNA, the paper's
                                     # subject: Table 1 and the alpha sweep) or None
    paper_rival: str | None = None   # the paper claims TNA beats it: "TNA beats {paper_rival}"
    paper: dict | None = None        # the paper's Fashion-MNIST accuracy (%) per weight mode
    compare: bool = False            # the bench tests it against the baseline and the main method


METHODS: dict[str, Method] = {}


def register_method(name: str, terms: Terms, **kwargs) -> Method:
    """Register a method under `name` (refusing a name taken or holding '+'); returns it."""
    if name in METHODS:
        raise ValueError(f"method {name!r} is registered twice")
    if SEP in name or not name:
        raise ValueError(f"method name {name!r}: non-empty, without {SEP!r}")
    method = Method(name=name, terms=terms, **kwargs)
    if method.nets not in NETS:
        raise ValueError(f"method {name}: nets {method.nets!r}, not one of {NETS}")
    METHODS[name] = method
    ordered_names = sorted(METHODS, key=lambda n: (METHODS[n].order, n))
    for n in ordered_names:          # the dict in `order`: --help and tables list it so
        METHODS[n] = METHODS.pop(n)
    return method


def unregister_method(name: str) -> None:
    """Remove a method (tests register throw-away ones)."""
    METHODS.pop(name, None)


def parse_method(name: str) -> tuple:
    """The registered methods of `name` ('tna' or 'tna+self-distill'), in registry order;
    TnaError in one line when a part is unknown, repeated, out of order or cannot combine."""
    parts = str(name).split(SEP)
    unknown = [p for p in parts if p not in METHODS]
    if unknown:
        raise TnaError(f"method = {name!r}: {unknown[0]!r} is not a method; choose one of "
                       f"{', '.join(METHODS)}, or join several with '{SEP}'")
    methods = tuple(METHODS[p] for p in parts)
    if len(parts) == 1:
        return methods
    if len(set(parts)) != len(parts):
        raise TnaError(f"method = {name!r}: names a method twice")
    loner = [m.name for m in methods if not m.combines]
    if loner:
        raise TnaError(f"method = {name!r}: {loner[0]} combines with no other method")
    nets = [m.name for m in methods if m.nets != "none"]
    if len(nets) > 1:
        raise TnaError(f"method = {name!r}: {nets[0]} and {nets[1]} each train an extra "
                       f"network (twin or teacher); combine at most one of them")
    order = list(METHODS)
    canonical = SEP.join(sorted(parts, key=order.index))
    if canonical != name:
        raise TnaError(f"method = {name!r}: write it {canonical!r} (one name per combination)")
    return methods


def extra_net(name: str) -> str:
    """'twin', 'teacher' or 'none': the extra network method `name` trains beside the base."""
    return next((m.nets for m in parse_method(name) if m.nets != "none"), "none")


def per_step(name: str) -> bool:
    """Whether method `name`'s loss needs the base's readout per time step."""
    return any(m.per_step for m in parse_method(name))


def uses_alpha(name: str) -> bool:
    return any(m.uses_alpha for m in parse_method(name))


def _parts(name: str) -> list:
    """The registered methods among name's parts (a bench folder may hold cells of a method
    registered no more: reports name them as they are)."""
    return [METHODS[p] for p in str(name).split(SEP) if p in METHODS]


def label(name: str) -> str:
    """The method's name in tables and legends (parts joined with '+')."""
    return SEP.join(METHODS[p].label or p if p in METHODS else p for p in name.split(SEP))


def marker(name: str) -> str:
    """The plot marker: a single method's own; a combination's is '*'."""
    parts = _parts(name)
    return parts[0].marker if SEP not in name and parts else "*"


def with_role(role: str) -> str:
    """The name of the registered method with this bench role ('baseline', 'main')."""
    for m in METHODS.values():
        if m.role == role:
            return m.name
    raise TnaError(f"no registered method has the bench role {role!r}")


def has_role(name: str, role: str) -> bool:
    """Whether a part of method `name` has the bench role (tna+self-distill has 'main')."""
    return any(m.role == role for m in _parts(name))


def paper_rivals() -> list:
    """(name, what 'TNA beats ...' calls it) of the methods the paper compares TNA with."""
    return [(m.name, m.paper_rival) for m in METHODS.values() if m.paper_rival]


def paper_accuracy(name: str, weights: str):
    """The paper's Fashion-MNIST accuracy of method `name` in weight mode `weights`, or None."""
    m = METHODS.get(name)
    return (m.paper or {}).get(weights) if m is not None else None


def compared(name: str) -> bool:
    """Whether the bench tests `name` against the baseline and the main method."""
    return any(m.compare for m in _parts(name))


def ordered(names) -> list:
    """`names` in registry order (a combination after its first part; unknown ones last)."""
    order = list(METHODS)
    return sorted(names, key=lambda n: ([order.index(p) if p in order else len(order)
                                         for p in n.split(SEP)], n))


def loss_terms(outputs: Outputs, cfg) -> dict:
    """The terms of method `cfg.method` on one batch: {name: scalar tensor}, plus 'loss', the
    sum over the terms, in order, of weight * term (a weight of 1 adds the term itself)."""
    weighted: dict = {}
    for method in parse_method(cfg.method):
        for key, value in method.terms(outputs, cfg).items():
            weighted.setdefault(key, value)     # a shared term (ce_base) counts once
    terms = {k: t for k, (_, t) in weighted.items()}
    loss = None
    for w, t in weighted.values():
        part = t if w == 1 else w * t
        loss = part if loss is None else loss + part
    terms["loss"] = loss
    return terms


def check(cfg) -> None:
    """Every registered method's options' `validate` (a bad --kd-loss is an error whatever the
    method), then the `check` of cfg.method's parts."""
    for options in option_classes():
        if hasattr(options, "validate"):
            options.validate(cfg)
    for method in parse_method(cfg.method):
        if method.check is not None:
            method.check(cfg)


def option_classes() -> tuple:
    """The option dataclasses of the registered methods, in registry order (TrainConfig's
    bases: their fields are TrainConfig fields, CLI flags and YAML keys)."""
    return tuple(m.options for m in METHODS.values() if m.options is not None)


def kl_to(teacher, student, temperature: float):
    """KL(softmax(teacher / τ) ‖ softmax(student / τ)), summed over classes and averaged over
    the batch; the teacher is detached (no gradient reaches it). `teacher`, `student`:
    (N, classes)."""
    import torch.nn.functional as F
    target = F.softmax(teacher.detach() / temperature, dim=1)
    return F.kl_div(F.log_softmax(student / temperature, dim=1), target, reduction="batchmean")
