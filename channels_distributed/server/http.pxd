# For the compiled build (setup.py): the classes of the .py beside this file as extension types
# with typed attributes (C struct fields), and the methods called from C.
cimport cython

from channels_distributed.server cimport head, scope
from channels_distributed.server.base cimport Connection
from channels_distributed.server.cycle cimport RequestCycle

cdef class HttpProtocol(Connection):
    cdef public object parser, app, ws, pipeline, error, upgrade_scope
    cdef public RequestCycle reading, active
    cdef public long long line_limit, field_count, field_room
    cdef public double header_timeout, body_timeout, keepalive
    cdef public str root_path
    cdef public dict flagged, field_names, scope_template
    cdef public bint in_head, in_trailer, no_more
    cdef public double deadline
    cdef public int deadline_kind
    cdef public Py_ssize_t head_bytes, trailer_fields
    cdef public bytes url
    cdef public list headers
    cdef public long long flags
    cpdef _set_deadline(self, int kind, double seconds)
    cpdef reject(self, int status, str message)
    cpdef dict _scope(self, str version)
    cpdef on_header(self, bytes name, bytes value)
    cpdef _start(self, RequestCycle cycle)
    # Connection declares the cycle as an object (it cannot cimport RequestCycle, which cimports
    # it); the override reads it through a typed local.
    @cython.locals(cycle=RequestCycle)
    cpdef response_complete(self, done)
