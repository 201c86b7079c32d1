"""HTTP only: translate requests into domain and db calls, and results into responses."""
