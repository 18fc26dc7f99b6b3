# For the compiled build (setup.py): the classes of the .py beside this file as extension types
# with typed attributes (C struct fields), and the methods called from C.
from channels_distributed.server.context cimport ServerContext

cdef class Server:
    cdef public ServerContext context
    cdef public object config, loop, connections, _listeners, _tick, _closed_waiter
    cdef public bint _accepting
    cdef public Py_ssize_t pending
