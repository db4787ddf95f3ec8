"""Special token ids shared by the tokenizer, the data pipeline, the model, the losses and search, and
the file that marks each kind of export.

This module imports nothing, so that the model and the losses can use the ids without importing
tensorflow-text (which the tokenizer needs), and the CTranslate2 path without importing TensorFlow.
"""

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

# The file that makes a directory an export of each format.
EXPORT_MARKERS = {"savedmodel": "saved_model.pb", "ctranslate2": "model.bin"}
