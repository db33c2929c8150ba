"""File formats, without Django: bounds-checked GGUF and safetensors header readers, safe archive
extraction, file-name checks and GGUF dequantization.

The lowest layer: catalog imports it, job child processes use it without
Django, and it imports nothing of the project. Readers raise FormatError with a message that names
the file's problem; catalog turns it into a CatalogError for the user.
"""


class FormatError(ValueError):
    """A file is malformed or refused; the message says what is wrong."""
