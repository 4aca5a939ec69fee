"""``archmatrix audit``: predict illegal-instruction and wrong-architecture failures without running anything.

Reads the native binaries of an environment (ELF, Mach-O including every
slice of universal2 files), finds the instruction-set extensions their code
uses and whether they select code at run time, and predicts per lane:
``pass``, ``guarded``, ``illegal-instruction`` or ``wrong-arch``.

Modules, in pipeline order: ``binaries`` (find them), ``elf``/``macho``
(read them into ``image.Image``), ``isa`` (scan the code), ``predict``
(lanes and verdicts), ``report`` (the pipeline and JSON), ``render``
(tables, predicted vs actual), ``main`` (the CLI). Nothing is imported
here, so the CLI's ``--help`` does not load capstone.
"""
