"""neuralcodec.train"""
