"""The strategy handlers as the engine kernel calls them: fixed signatures, built from addresses.

The kernel takes the handlers as one int64 array of addresses (`Handlers.addresses`: the numba
entry point of each compiled handler, then its C wrapper) and the context as its pointer table,
both plain arrays, so calling the kernel from Python stays on numba's fast dispatch path. Inside,
`handler_functions` turns the addresses back into first-class functions that call each handler
through numba's own calling convention: exceptions a handler raises propagate to the kernel's
caller like any other, with the handler's file and line in the traceback.
"""

from __future__ import annotations

import warnings

from numba import njit, types
from numba.core import cgutils
from numba.core.errors import NumbaExperimentalFeatureWarning
from numba.core.extending import intrinsic

from sq.core.engine.context import CONTEXT, Context

# numba calls first-class function types experimental; sq pins their use to this module and its tests
warnings.filterwarnings("ignore", message="First-class function type", category=NumbaExperimentalFeatureWarning)

SIGNATURES = {
    "on_book": types.void(CONTEXT, types.int64),
    "on_trade": types.void(CONTEXT, types.int64, types.int64, types.int64, types.float64),
    "on_fill": types.void(CONTEXT, types.int64, types.int64, types.float64, types.float64),
    "on_timer": types.void(CONTEXT, types.int64),
}
EVENTS = tuple(SIGNATURES)  # the order of `Handlers.addresses`: entry points, then C wrappers


def _function_from(signature):
    fnty = types.FunctionType(signature)

    @intrinsic
    def function_from(typingctx, jit_address, c_address):
        """A first-class function of `signature` from its entry point and C wrapper addresses."""
        if not (isinstance(jit_address, types.Integer) and isinstance(c_address, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            fn = cgutils.create_struct_proxy(fnty)(context, builder)
            voidptr = context.get_value_type(types.voidptr)
            fn.jit_addr = builder.inttoptr(args[0], voidptr)
            fn.c_addr = builder.inttoptr(args[1], voidptr)
            fn.py_addr = context.get_constant_null(types.voidptr)
            return fn._getvalue()

        return fnty(jit_address, c_address), codegen

    return function_from


_BOOK = _function_from(SIGNATURES["on_book"])
_TRADE = _function_from(SIGNATURES["on_trade"])
_FILL = _function_from(SIGNATURES["on_fill"])
_TIMER = _function_from(SIGNATURES["on_timer"])


@njit(inline="always", cache=True, _nrt=False)
def handler_functions(hx, table):
    """(on_book, on_trade, on_fill, on_timer, ctx) from the address array and the context table."""
    return (_BOOK(hx[0], hx[4]), _TRADE(hx[1], hx[5]), _FILL(hx[2], hx[6]), _TIMER(hx[3], hx[7]), Context(table))
