"""neuralcodec.export"""
