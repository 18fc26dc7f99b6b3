cdef class Connection:
    cdef public object node, route, raw, connect, kind, scope
    cdef public object _pending, gone, done, peer

cdef class Lifespan:
    cdef public object app, mode, state, _to_app, _from_app, _task

