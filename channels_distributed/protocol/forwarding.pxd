# For the compiled build (setup.py): the machine as an extension type (see compiled.py).
cdef class Forwarding:
    cdef public object side, rows, state, credit, timer, accept_timeout, late_timeout
