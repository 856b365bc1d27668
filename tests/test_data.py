"""Corpus sources, cleaning, dedup, hash split, errors, and tokenize + pack."""

import json
from pathlib import Path

import datasets
import pytest

from hindi_models.tokenizer import CLS_ID, PAD_ID, SEP_ID, train_tokenizer
from training import data
from training.data import (
    clean_text,
    devanagari_fraction,
    is_validation,
    load_corpus,
    load_hf_texts,
    resolve_files,
    shared_corpus_files,
    shared_data_dir,
)
from training.packing import tokenize_and_pack

datasets.disable_progress_bars()

WORDS = "भारत हिंदी भाषा देश नदी पर्वत गाँव शहर किताब बच्चे स्कूल पढ़ाई खेल सुबह शाम लोग".split()


def sentences(n: int, offset: int = 0) -> list[str]:
    """n distinct Hindi lines (deterministic)."""
    return [f"{WORDS[i % len(WORDS)]} {WORDS[(i // 7) % len(WORDS)]} वाक्य {i + offset} है।" for i in range(n)]


def write(path: Path, lines) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def texts(ds) -> list[str]:
    return [row["text"] for row in ds]


@pytest.fixture
def cache(tmp_path) -> str:
    return str(tmp_path / "hf_cache")


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(sentences(300) * 2, vocab_size=800, show_progress=False)


# --------------------------------------------------------------------------- cleaning


def test_clean_text():
    assert clean_text("  यह   एक\tपरीक्षण\u00a0है।\n") == "यह एक परीक्षण है।"
    assert clean_text("\ufeffनमस्ते") == "नमस्ते"
    assert clean_text("\u0958") == "\u0915\u093c"  # NFC decomposes precomposed nukta letters
    assert clean_text("e\u0301") == "\u00e9"
    assert clean_text(None) == "" and clean_text("   ") == ""


def test_devanagari_fraction():
    assert devanagari_fraction("नमस्ते") == 1.0
    assert devanagari_fraction("hello") == 0.0
    assert devanagari_fraction("ab कख") == 0.5
    assert devanagari_fraction("") == 0.0


def test_load_cleans_dedups_and_drops_empty(tmp_path, cache):
    lines = ["नमस्ते   दुनिया।", "", "   ", "नमस्ते दुनिया।", "यह\tपरीक्षण है।", "यह परीक्षण है।", "नया वाक्य"]
    corpus = load_corpus(write(tmp_path / "a.txt", lines), validation_fraction=0.0, cache_dir=cache)
    assert texts(corpus["train"]) == ["नमस्ते दुनिया।", "यह परीक्षण है।", "नया वाक्य"]
    assert len(corpus["validation"]) == 0
    assert corpus["train"].column_names == ["text"]


def test_dedup_can_be_switched_off(tmp_path, cache):
    corpus = load_corpus(write(tmp_path / "a.txt", ["एक", "एक"]), validation_fraction=0.0, dedup=False, cache_dir=cache)
    assert texts(corpus["train"]) == ["एक", "एक"]


def test_devanagari_filter(tmp_path, cache):
    lines = ["पूरा हिंदी वाक्य", "mostly english text with एक word", "just english"]
    path = write(tmp_path / "a.txt", lines)
    assert len(load_corpus(path, validation_fraction=0.0, cache_dir=cache)["train"]) == 3  # default: off
    kept = load_corpus(path, validation_fraction=0.0, min_devanagari_fraction=0.5, cache_dir=cache)["train"]
    assert texts(kept) == ["पूरा हिंदी वाक्य"]


# --------------------------------------------------------------------------- hash split


def test_split_fraction_and_assignment(tmp_path, cache):
    lines = sentences(3000)
    corpus = load_corpus(write(tmp_path / "a.txt", lines), validation_fraction=0.1, cache_dir=cache)
    n_val = len(corpus["validation"])
    assert 200 < n_val < 400 and n_val + len(corpus["train"]) == 3000
    assert all(is_validation(t, 0.1) for t in texts(corpus["validation"]))
    assert not any(is_validation(t, 0.1) for t in texts(corpus["train"]))
    assert texts(corpus["train"]) == [t for t in lines if not is_validation(t, 0.1)]  # order kept


def test_adding_data_never_moves_old_lines(tmp_path, cache):
    old = sentences(1000)
    new = sentences(1000, offset=5000)
    small = load_corpus(write(tmp_path / "old.txt", old), validation_fraction=0.2, cache_dir=cache)
    write(tmp_path / "new.txt", new)
    big = load_corpus([tmp_path / "new.txt", tmp_path / "old.txt"], validation_fraction=0.2, cache_dir=cache)
    assert set(texts(small["train"])) <= set(texts(big["train"]))
    assert set(texts(small["validation"])) <= set(texts(big["validation"]))
    assert not set(texts(big["train"])) & set(texts(big["validation"]))


def test_explicit_validation_file_and_decontamination(tmp_path, cache):
    train = write(tmp_path / "train.txt", sentences(50))
    val = write(tmp_path / "validation.txt", sentences(5) + ["अलग वाक्य"])
    corpus = load_corpus(train, validation_sources=val, cache_dir=cache)
    assert texts(corpus["validation"]) == sentences(5) + ["अलग वाक्य"]
    assert texts(corpus["train"]) == sentences(50)[5:]  # lines also in validation are dropped


# --------------------------------------------------------------------------- sources


def test_default_source_is_the_bundled_sample_folder(tmp_path, monkeypatch, cache):
    sample = tmp_path / "sample"
    sample.mkdir()
    write(sample / "part1.txt", sentences(10))
    write(sample / "part2.txt", sentences(10, offset=10))
    (sample / "notes.md").write_text("not a corpus file")
    monkeypatch.setattr(data, "sample_dir", lambda: sample)
    corpus = load_corpus(validation_fraction=0.0, cache_dir=cache)
    assert texts(corpus["train"]) == sentences(10) + sentences(10, offset=10)


def test_real_bundled_sample_if_present(cache):
    files = sorted(data.sample_dir().glob("*.txt"))
    if not files:
        pytest.skip(f"bundled sample not written yet at {data.sample_dir()}")
    corpus = load_corpus(cache_dir=cache)
    assert len(corpus["train"]) > 0 and all("\n" not in t for t in texts(corpus["train"]))


def test_jsonl_glob_folder_and_mixed_sources(tmp_path, cache):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    write(folder / "a.txt", sentences(3))
    write_jsonl(folder / "sub" / "b.jsonl", [{"text": t, "id": i} for i, t in enumerate(sentences(3, offset=3))])
    expected = sentences(3) + sentences(3, offset=3)
    assert resolve_files(folder) == [folder / "a.txt", folder / "sub" / "b.jsonl"]
    by_folder = load_corpus(folder, validation_fraction=0.0, cache_dir=cache)
    by_glob = load_corpus(str(folder / "**" / "*.*"), validation_fraction=0.0, cache_dir=cache)
    by_list = load_corpus([folder / "a.txt", folder / "sub" / "b.jsonl"], validation_fraction=0.0, cache_dir=cache)
    jsonl_only = load_corpus(str(folder / "sub" / "*.jsonl"), validation_fraction=0.0, cache_dir=cache)
    assert texts(by_folder["train"]) == texts(by_glob["train"]) == texts(by_list["train"]) == expected
    assert texts(jsonl_only["train"]) == sentences(3, offset=3)


def test_jsonl_other_text_field(tmp_path, cache):
    path = write_jsonl(tmp_path / "a.jsonl", [{"body": t} for t in sentences(4)])
    corpus = load_corpus(path, text_column="body", validation_fraction=0.0, cache_dir=cache)
    assert texts(corpus["train"]) == sentences(4)


def test_hf_dataset_source_from_local_dataset_folder(tmp_path, cache):
    # The Hub is unreachable in tests; a local dataset folder goes through the same load_dataset call.
    repo = tmp_path / "my_dataset"
    (repo / "data").mkdir(parents=True)
    write_jsonl(repo / "data" / "train.jsonl", [{"text": t} for t in sentences(20)])
    write_jsonl(repo / "data" / "test.jsonl", [{"text": t} for t in sentences(3, offset=100)])
    corpus = load_corpus(f"hf://{repo}", validation_fraction=0.0, cache_dir=cache)
    assert texts(corpus["train"]) == sentences(20)
    test_split = load_corpus(f"hf://{repo}", hf_split="test", validation_fraction=0.0, cache_dir=cache)
    assert texts(test_split["train"]) == sentences(3, offset=100)
    streamed = load_corpus(f"hf://{repo}", validation_fraction=0.0, streaming=True, cache_dir=cache)
    assert texts(streamed["train"]) == sentences(20)


def test_loaded_dataset_objects_and_explicit_hf_args(tmp_path, cache):
    repo = tmp_path / "ds"
    repo.mkdir()
    write_jsonl(repo / "validation.jsonl", [{"sentence": t} for t in sentences(6)])
    raw = load_hf_texts(str(repo), split="validation", text_column="sentence", cache_dir=cache)
    assert raw.column_names == ["text"] and texts(raw) == sentences(6)
    assert texts(load_corpus(raw, validation_fraction=0.0)["train"]) == sentences(6)
    in_memory = datasets.Dataset.from_dict({"text": sentences(5) + ["", sentences(5)[0]]})
    assert texts(load_corpus(in_memory, validation_fraction=0.0)["train"]) == sentences(5)
    lazy = load_corpus(in_memory.to_iterable_dataset(), validation_fraction=0.0)
    assert isinstance(lazy, datasets.IterableDatasetDict) and texts(lazy["train"]) == sentences(5)
    with pytest.raises(ValueError, match=r"empty corpus: the given dataset"):
        load_corpus(datasets.Dataset.from_dict({"text": [" "]}))


def test_hf_dataset_missing_text_column(tmp_path, cache):
    repo = tmp_path / "ds"
    repo.mkdir()
    write_jsonl(repo / "train.jsonl", [{"sentence": t} for t in sentences(3)])
    with pytest.raises(ValueError, match=r"no 'text' column \(found \['sentence'\]\)"):
        load_corpus(f"hf://{repo}", cache_dir=cache)
    corpus = load_corpus(f"hf://{repo}", text_column="sentence", validation_fraction=0.0, cache_dir=cache)
    assert texts(corpus["train"]) == sentences(3)


def test_streaming_matches_in_memory_and_repeats(tmp_path, cache):
    lines = sentences(400) + sentences(50) + ["", "  "]  # duplicates and blanks
    path = write(tmp_path / "a.txt", lines)
    write_jsonl(tmp_path / "b.jsonl", [{"text": t} for t in sentences(30, offset=900)])
    sources = [path, tmp_path / "b.jsonl"]
    eager = load_corpus(sources, validation_fraction=0.2, cache_dir=cache)
    lazy = load_corpus(sources, validation_fraction=0.2, streaming=True, cache_dir=cache)
    assert isinstance(lazy, datasets.IterableDatasetDict)
    for split in ("train", "validation"):
        assert texts(lazy[split]) == texts(eager[split])
        assert texts(lazy[split]) == texts(lazy[split])  # a second pass (epoch) sees the same lines


def test_shared_data_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HINDI_MODELS_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    assert shared_data_dir("/elsewhere") == Path("/elsewhere")
    with pytest.raises(FileNotFoundError, match="HINDI_MODELS_SHARED_DATA"):
        shared_corpus_files()
    monkeypatch.delenv("HINDI_MODELS_SHARED_DATA")
    assert shared_data_dir() == data.REPO_ROOT.parent / "shared" / "data"


def test_shared_corpus_is_found_if_present():
    folder = shared_data_dir() / data.SHARED_CORPUS
    if not folder.is_dir():
        pytest.skip(f"shared corpus not found at {folder} (set HINDI_MODELS_SHARED_DATA)")
    files = shared_corpus_files()
    assert files["train"].name == "train.txt" and files["validation"].name == "validation.txt"


# --------------------------------------------------------------------------- errors


def test_error_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.txt: no such file or folder"):
        load_corpus(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="the pattern matches no file"):
        load_corpus(str(tmp_path / "nothing*.txt"))
    with pytest.raises(FileNotFoundError, match="folder has no .txt or .jsonl file"):
        load_corpus(tmp_path)


def test_error_empty_corpus(tmp_path, cache):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match=r"empty corpus: .*empty\.txt"):
        load_corpus(tmp_path / "empty.txt", cache_dir=cache)
    blank = write(tmp_path / "blank.txt", ["", "   ", "\t"])
    with pytest.raises(ValueError, match=r"empty corpus: .*blank\.txt has no non-empty line"):
        load_corpus(blank, cache_dir=cache)
    with pytest.raises(ValueError, match=r"empty corpus: .*blank\.txt has no non-empty line"):
        load_corpus(blank, streaming=True, cache_dir=cache)


def test_error_no_devanagari(tmp_path, cache):
    path = write(tmp_path / "english.txt", ["only english here", "and here"])
    with pytest.raises(ValueError, match=r"no Devanagari text in .*english\.txt"):
        load_corpus(path, cache_dir=cache)
    with pytest.raises(ValueError, match=r"no Devanagari text in .*english\.txt"):
        load_corpus(path, streaming=True, cache_dir=cache)


def test_error_not_utf8(tmp_path, cache):
    path = tmp_path / "latin1.txt"
    path.write_bytes("नमस्ते\n".encode() + "café\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt: not UTF-8 \(bad byte near offset 22\)"):
        load_corpus(path, cache_dir=cache)


def test_error_bad_jsonl(tmp_path, cache):
    no_key = write_jsonl(tmp_path / "nokey.jsonl", [{"body": "नमस्ते"}])
    with pytest.raises(ValueError, match=r"nokey\.jsonl:1: no 'text' field \(found \['body'\]\)"):
        load_corpus(no_key, cache_dir=cache)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('\n{"text": "नमस्ते"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: not valid JSON"):
        load_corpus(broken, cache_dir=cache)


def test_error_bad_arguments(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text("text\nनमस्ते\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"a\.csv: unsupported file type '\.csv'"):
        load_corpus(csv)
    with pytest.raises(ValueError, match="validation_fraction=1.5"):
        load_corpus(csv, validation_fraction=1.5)


# --------------------------------------------------------------------------- tokenize + pack


def test_pack_blocks(tmp_path, tok):
    lines = sentences(300)
    ds = datasets.Dataset.from_dict({"text": lines})
    packed, stats = tokenize_and_pack(ds, tok, block_size=64, cache_dir=tmp_path / "c")
    encoded = [tok(t)["input_ids"] for t in lines]
    stream = [i for ids in encoded for i in ids]
    assert all(ids[0] == CLS_ID and ids[-1] == SEP_ID for ids in encoded)
    assert stats["n_lines"] == 300 and stats["n_tokens"] == len(stream)
    assert stats["n_words"] == sum(len(t.split()) for t in lines) and stats["n_chars"] == sum(map(len, lines))
    assert stats["n_blocks"] == len(stream) // 64 == len(packed)  # one map batch: one remainder dropped
    assert stats["n_tokens_packed"] == 64 * len(packed)
    blocks = [row["input_ids"] for row in packed]
    assert all(len(b) == 64 for b in blocks) and packed.column_names == ["input_ids"]
    assert [i for b in blocks for i in b] == stream[: 64 * len(blocks)]  # order and boundaries kept
    assert PAD_ID not in {i for b in blocks for i in b}
    assert blocks[0][0] == CLS_ID


def test_pack_remainder_is_dropped_per_batch_like_run_clm(tok):
    lines = sentences(2500)
    packed, stats = tokenize_and_pack(datasets.Dataset.from_dict({"text": lines}), tok, block_size=100)
    lengths = [len(tok(t)["input_ids"]) for t in lines]
    per_batch = [sum(lengths[i : i + 1000]) // 100 for i in range(0, 2500, 1000)]
    assert len(packed) == sum(per_batch) == stats["n_blocks"]
    assert stats["n_tokens"] - stats["n_tokens_packed"] < 3 * 100


def test_pack_dataset_dict_and_cache(tmp_path, tok, cache):
    corpus = load_corpus(write(tmp_path / "a.txt", sentences(500)), validation_fraction=0.2, cache_dir=cache)
    packed, stats = tokenize_and_pack(corpus, tok, block_size=32, cache_dir=tmp_path / "c")
    assert set(packed) == set(stats) == {"train", "validation"}
    assert stats["train"]["n_lines"] == len(corpus["train"]) and len(packed["validation"]) > 0
    files = sorted((tmp_path / "c").glob("*.arrow"))
    assert len(files) == 4  # tokenized + packed, per split
    mtimes = [f.stat().st_mtime_ns for f in files]
    again, stats2 = tokenize_and_pack(corpus, tok, block_size=32, cache_dir=tmp_path / "c")
    assert stats2 == stats and again["train"]["input_ids"][:3] == packed["train"]["input_ids"][:3]
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # read back, not recomputed
    # Another block size re-packs but reuses the tokenized cache.
    tokenize_and_pack(corpus, tok, block_size=16, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("*.arrow"))) == 6


def test_pack_streaming(tmp_path, tok, cache):
    corpus = load_corpus(write(tmp_path / "a.txt", sentences(200)), validation_fraction=0.0, streaming=True,
                         cache_dir=cache)
    packed, stats = tokenize_and_pack(corpus, tok, block_size=32)
    assert stats == {"train": None, "validation": None}
    blocks = [row["input_ids"] for row in packed["train"]]
    assert blocks and all(len(b) == 32 for b in blocks)
    eager, _ = tokenize_and_pack(datasets.Dataset.from_dict({"text": sentences(200)}), tok, block_size=32)
    assert blocks == [row["input_ids"] for row in eager]


def test_pack_rejects_tiny_blocks(tok):
    with pytest.raises(ValueError, match="block_size=1"):
        tokenize_and_pack(datasets.Dataset.from_dict({"text": ["क"]}), tok, block_size=1)


def test_shared_corpus_loads_if_present(tmp_path):
    folder = shared_data_dir() / data.SHARED_CORPUS
    if not folder.is_dir():
        pytest.skip(f"shared corpus not found at {folder} (set HINDI_MODELS_SHARED_DATA)")
    # Only the validation file, to stay fast: it goes through the same path as the 83 MB train file.
    corpus = load_corpus(folder / "validation.txt", validation_fraction=0.0, cache_dir=str(tmp_path))
    assert len(corpus["train"]) == 5030
