package org.apache.dubbo.demo;

import java.io.Serializable;

/** A linked node, used for the self-reference golden case. */
public class Node implements Serializable {
    private static final long serialVersionUID = 1L;

    public String name;
    public Node next;

    public Node() {}

    public Node(String name) {
        this.name = name;
    }
}
