# For the compiled build (setup.py): the functions the connection, the request cycle and the
# WebSocket session call at C level. Arguments an application chose stay untyped objects: the
# Python code checks them and says what is wrong.
cpdef bytes status_line(status)
cpdef bytes error_body(int status, str message)
cpdef bytes error_response(int status, str message, bytes date_line, bytes server_line)
cpdef int header_kind(name, value) except -1
cpdef parse_length(value)
# The status lines, a C global (private: read by status_line() only).

cdef dict _STATUS_LINES
