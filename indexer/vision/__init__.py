"""Face detection, face cropping and emotion classification."""
