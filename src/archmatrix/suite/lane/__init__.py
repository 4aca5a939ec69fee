"""What the suite finds out about the lane itself: its facts, and what the dynamic loader did not say."""
