"""Batch reports for analysts and auditors: static, offline HTML with small-cell suppression."""
