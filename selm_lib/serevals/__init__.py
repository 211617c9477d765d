"""serevals"""
