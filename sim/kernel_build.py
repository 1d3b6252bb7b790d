"""Faster kernel builds in Taichi 1.7: two pure functions of its Python front end memoized
(``install``), and chosen kernels compiled without its IR passes (``without_ir_passes``).

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
    _installed = True


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
