# For the compiled build (setup.py): the classes of the .py beside this file as extension
# types. Their attributes become C struct fields instead of instance-dict entries; typed as
# object, they keep Python's semantics.
cdef class Connection:
    cdef public object context, route, raw, connect, kind, scope
    cdef public object _pending, gone, done, _run, peer
