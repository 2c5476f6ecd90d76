"""neuralcodec.codecs"""
