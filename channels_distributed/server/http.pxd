# For the compiled build (setup.py): the classes of the .py beside this file as extension
# types with typed attributes (C struct fields), and the methods called from C.
from channels_distributed.server cimport head
from channels_distributed.server.cycle cimport RequestCycle
from channels_distributed.server.flow cimport FlowControl
from channels_distributed.server.server cimport Server

cdef class HttpProtocol:
    cdef public Server server
    cdef public object config, loop, parser, app, transport, client, local, ws
    cdef public object pipeline, proxy_buffer, error, upgrade_scope, scheme
    cdef public FlowControl flow
    cdef public RequestCycle reading, active
    cdef public long long line_limit, field_count, field_room
    cdef public double header_timeout, body_timeout, keepalive
    cdef public str root_path
    cdef public dict flagged
    cdef public bint trusted, in_head, in_trailer, no_more, closed
    cdef public double deadline
    cdef public int deadline_kind
    cdef public Py_ssize_t head_bytes, trailer_fields
    cdef public bytes url
    cdef public list headers
    cdef public long long flags
    cpdef _set_deadline(self, int kind, double seconds)
    cpdef reject(self, int status, str message)
    cpdef _write_error(self, int status, str message)
    cpdef dict _scope(self, str version)
    cpdef _start(self, RequestCycle cycle)
    cpdef response_complete(self, RequestCycle cycle)
    cpdef bint _can_drain(self, RequestCycle cycle)
    cpdef abort_cycle(self, RequestCycle cycle)
    cpdef close(self)
