"""The ground floor: files and bytes, no networks (imports only numpy, Pillow, PyAV and
``neuralcodec.errors``/``limits``). ``images`` reads image files as 8-bit RGB, ``outputs``
writes outputs atomically under the output rules, ``colour`` converts RGB <-> yuv420p,
``frames`` lists and reads frame folders and video files, ``varint`` is the one LEB128 helper."""
