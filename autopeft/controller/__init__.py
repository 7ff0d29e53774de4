"""The search controller: Optuna decides what to try, Ray Tune where and when."""
