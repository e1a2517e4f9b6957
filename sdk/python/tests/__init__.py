"""The tests of tamesdk, against the real Tame server (see conftest)."""
