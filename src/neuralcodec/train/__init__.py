"""neuralcodec.train"""

# torch.compile modes the trainer accepts (torch-free here, for the CLI's choices)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
