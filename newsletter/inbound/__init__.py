"""The way back in: reports about sent messages (for now, Amazon SES's over SNS: sns.py)."""
