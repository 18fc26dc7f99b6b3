# For the compiled build (setup.py): lets http.py call target() at C level.
cpdef tuple target(bytes method, bytes url)
