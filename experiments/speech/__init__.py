"""Enhanced speech: resynthesis from a mask, model masks, offline and streaming enhancement, evaluation with
speech-quality metrics."""
