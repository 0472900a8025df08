"""Enhanced speech: resynthesis from a mask, offline and streaming enhancement, speech-quality metrics."""
