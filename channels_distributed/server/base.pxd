# For the compiled build (setup.py): the class of the .py beside this file as an extension type
# with typed attributes (C struct fields), and the methods called from C; HttpProtocol (http.pxd)
# extends it, and overrides response_complete and reject.
from channels_distributed.server cimport response
from channels_distributed.server.context cimport ServerContext
from channels_distributed.server.flow cimport FlowControl

cdef class Connection:
    cdef public ServerContext context
    cdef public object owner, config, loop, transport, client, local, scheme, proxy_buffer
    cdef public object answered
    cdef public FlowControl flow
    cdef public bint trusted, closed
    cpdef _attach(self, transport)
    cpdef close(self)
    cpdef response_complete(self, cycle)
    cpdef abort_cycle(self, cycle)
    cpdef reject(self, int status, str message)
    cpdef _write_error(self, int status, str message, request=*)
