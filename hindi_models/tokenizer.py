"""Train and load the Devanagari-safe Hindi tokenizer."""

# Special tokens at fixed ids 0-4, shared by every architecture and by the presets' model configs.
PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN]
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
# Every document is encoded as `[CLS] text [SEP]` for all three architectures: [CLS] doubles as the
# causal models' BOS and [SEP] as their EOS / document boundary, so one packed stream serves GPT, BERT
# and both branches of the hybrid.
BOS_ID, EOS_ID = CLS_ID, SEP_ID
