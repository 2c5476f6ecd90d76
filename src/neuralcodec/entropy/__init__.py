"""neuralcodec.entropy"""
