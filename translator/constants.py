"""Special token ids shared by the tokenizer, the data pipeline, the model, the losses and search.

This module imports nothing, so that the model and the losses can use the ids without importing
tensorflow-text (which the tokenizer needs).
"""

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
