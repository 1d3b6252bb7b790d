"""Faster kernel builds and launches in Taichi 1.7: two pure functions of its Python front
end memoized and repeated launches short-cut (``install``), and chosen kernels compiled
without its IR passes (``without_ir_passes``).

Taichi turns every kernel's Python source into its IR again in each process, even when the
offline cache holds the compiled code, because the cache key is computed from that IR. Of
that transform, a profile of the shells' first step (warm cache) put about half in
``ASTTransformerContext.get_pos_info``: the error-message excerpt of every AST node visited,
wrapped with textwrap whether or not an error ever comes; and another sixth in reading each
``ti.func``'s source with ``inspect`` again at every call site. Both results depend only on
the source, which does not change while the process runs, so they are cached here: the
messages, the IR and therefore the cache keys stay exactly what Taichi makes.
"""

from __future__ import annotations

import contextlib
import functools

_installed = False


def _position_key(ctx, node) -> tuple:
    """What ``get_pos_info`` reads: the function's source (file, offset, indent, name) and
    the node's span (for a block, up to its first statement)."""
    body = getattr(node, "body", None)
    first = body[0].lineno if isinstance(body, list) and body and hasattr(body[0], "lineno") else None
    return (ctx.file, ctx.lineno_offset, ctx.indent, ctx.func.func.__name__, type(node).__name__, node.lineno,
            node.end_lineno, node.col_offset, node.end_col_offset, first)


def install() -> None:
    """Memoize the source excerpts and source reads (idempotent; before kernels compile)."""
    global _installed
    if _installed:
        return
    from taichi.lang import kernel_impl
    from taichi.lang.ast import ast_transformer_utils

    context = ast_transformer_utils.ASTTransformerContext
    excerpt = context.get_pos_info
    excerpts: dict[tuple, str] = {}

    @functools.wraps(excerpt)
    def get_pos_info(self, node):
        key = _position_key(self, node)
        text = excerpts.get(key)
        if text is None:
            text = excerpts[key] = excerpt(self, node)
        return text

    context.get_pos_info = get_pos_info
    kernel_impl.getsourcefile = functools.lru_cache(maxsize=None)(kernel_impl.getsourcefile)
    kernel_impl.getsourcelines = _cached_lines(kernel_impl.getsourcelines)
    kernel_impl.Kernel.__call__ = _repeat_launches(kernel_impl.Kernel.__call__)
    _installed = True


# Compiled variants remembered per kernel for direct launches (a kernel's few owners).
REMEMBERED_VARIANTS = 8


def _repeat_launches(call):
    """``Kernel.__call__`` that goes straight to the launch when a kernel is called again
    with the same template arguments and any scalars.

    Before each launch Taichi re-derives the compiled variant's key from every argument
    (about 15 of a call's 25 us on the 2-core machine, where a substep of the two-pad grasp
    makes 15 launches forward, 27 forward and backward). Scalars do not enter that key; a
    template argument enters by identity (a ``data_oriented`` object, a field) or by value
    (a Python number or string). When those match a variant this wrapper remembered, that
    is the key Taichi would derive, and the kernel Taichi compiled for it is launched
    directly (after a reset there is none until the full call compiles it again). Anything
    else (array arguments, tuples as templates, keywords, autodiff tapes) takes the full
    call. Only keys are remembered, never compiled kernels: those belong to Taichi's
    program and go with it."""
    import weakref

    from taichi.lang.field import Field
    from taichi.lang.kernel_impl import template
    from taichi.types import primitive_types

    scalars = (*primitive_types.all_types, int, float)
    by_value = (int, float, bool, str)

    def template_positions(kernel) -> tuple[int, ...] | None:
        """Where the template arguments are; None if some argument is neither a template
        nor a scalar."""
        positions = []
        for i, argument in enumerate(kernel.arguments):
            if isinstance(argument.annotation, template):
                positions.append(i)
            elif argument.annotation not in scalars:
                return None
        return tuple(positions)

    def pin(value):
        """What a later template argument must be to give the same key (None: no cheap test)."""
        if hasattr(value, "_data_oriented"):
            return weakref.ref(value)
        if isinstance(value, Field) or type(value) in by_value:
            return value
        return None

    def same(pinned, value) -> bool:
        if type(pinned) is weakref.ref:
            return pinned() is value
        if type(pinned) in by_value:
            return type(value) is type(pinned) and value == pinned
        return pinned is value

    @functools.wraps(call)
    def __call__(self, *args, **kwargs):
        plain = not kwargs and len(args) == len(self.arguments) and not self.runtime.fwd_mode_manager \
            and not self.runtime.target_tape
        variants = self.__dict__.get("_variants")  # [(pins, key)]
        if plain and variants:
            positions = self._template_positions
            for pins, key in variants:
                if all(same(p, args[i]) for p, i in zip(pins, positions)):
                    compiled = self.compiled_kernels.get(key)
                    if compiled is not None:
                        return self.launch_kernel(compiled, *args)
                    break
        result = call(self, *args, **kwargs)
        if plain:
            if "_template_positions" not in self.__dict__:
                self._template_positions = template_positions(self)
            positions = self._template_positions
            pins = None if positions is None else tuple(pin(args[i]) for i in positions)
            if pins is not None and all(p is not None for p in pins):
                key = self.ensure_compiled(*args)
                variants = [v for v in self.__dict__.get("_variants", ()) if v[1] != key]
                self._variants = [(pins, key), *variants][:REMEMBERED_VARIANTS]
        return result

    return __call__


def _cached_lines(read):
    """getsourcelines, cached per function; each call gets its own copy of the line list."""
    cache: dict = {}

    @functools.wraps(read)
    def getsourcelines(obj):
        if obj not in cache:
            cache[obj] = read(obj)
        lines, start = cache[obj]
        return list(lines), start

    return getsourcelines


@contextlib.contextmanager
def without_ir_passes():
    """Kernels first called inside compile without Taichi's own IR optimizations (LLVM
    still optimizes them). For the MPM's hand-written adjoint kernels those passes are most
    of the compile time and buy no speed: the particle adjoint took 21 s to compile with
    them and 5.5 s without, and the two-pad grasp ran at 0.0254 and 0.0233 s per substep
    with them, 0.0256 and 0.0230 without. The flag is read when a kernel compiles (its first
    call) and is part of the offline cache's key.

    Not for Taichi's own reverse-mode kernels (``kernel.grad``): without the passes, the
    adjoints of local vectors start uninitialized (the reverse of ``v.norm()`` gives NaN in
    float32)."""
    from taichi.lang import impl

    cfg = impl.current_cfg()
    before = cfg.advanced_optimization
    cfg.advanced_optimization = False
    try:
        yield
    finally:
        cfg.advanced_optimization = before
