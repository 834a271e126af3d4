import { Component, type ErrorInfo, type ReactNode } from "react";

/** Shows what broke instead of a blank page; navigating elsewhere resets it (keyed by route). */
export class ErrorBoundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  state: { error: Error | null } = { error: null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error("page failed", error, info.componentStack);
  }

  render() {
    if (this.state.error)
      return (
        <div className="page">
          <p className="error" role="alert">
            This page failed to render: {this.state.error.message}
          </p>
        </div>
      );
    return this.props.children;
  }
}
