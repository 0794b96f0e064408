"""Test support code: a local Hugging Face Hub stand-in so the real clients can be tested offline."""
