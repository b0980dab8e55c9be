import random

from pipeline import dedup

WORDS = ("turkey russia missile defence ankara moscow washington sanctions purchase delivery system "
         "battery fighter programme jets officials said on tuesday that the deal would go ahead despite "
         "warnings from allies about compatibility with nato equipment").split()


def _story(seed, n=200):
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _shared_band(a, b):
    return bool(set(a.bands) & set(b.bands))


def test_syndicated_copies_are_similar_and_share_a_band():
    a = _story(1)
    copy = "By Staff Reporter. " + a + " Additional reporting by Reuters. Copyright 2019."
    fa, fc = dedup.fingerprint(a), dedup.fingerprint(copy)
    assert dedup.similarity(fa.signature, fc.signature) >= dedup.SIMILARITY
    assert _shared_band(fa, fc)


def test_different_stories_are_not_similar():
    fa, fb = dedup.fingerprint(_story(1)), dedup.fingerprint(_story(2))
    assert dedup.similarity(fa.signature, fb.signature) < 0.3


def test_fingerprint_is_stable_and_bands_are_numbered():
    f = dedup.fingerprint(_story(3))
    assert f == dedup.fingerprint(_story(3))
    assert len(f.signature) == dedup.NUM_PERM * 4
    assert [k >> 56 for k in f.bands] == list(range(dedup.BANDS))
    assert all(0 <= k < (1 << 63) for k in f.bands)  # fits a signed bigint
    assert dedup.fingerprint("Too short to judge.") is None
