"""Reports made from results alone: leaderboards, formatting, plots, the HTML report."""
