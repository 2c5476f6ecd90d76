"""neuralcodec.eval"""
