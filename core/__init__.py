"""proclab.core: the model. Processes, sampling, the TCP server; never a UI library.

Kept empty so that importing one module (e.g. proclab.core.defaults from the CLI, which
spawn children import as their main module) does not import the rest."""
