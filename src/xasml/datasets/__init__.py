"""Dataset formats, splits and builders."""
